//! The `hearth` command-line tool.

fn main() -> anyhow::Result<()> {
    Ok(())
}
