//! `hearth serve`: the OpenAI-compatible local API server (see `hearth::server`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hearth::server::{DEFAULT_MAX_QUEUE, Server, ServerConfig, shutdown_signal};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("shared_cache").multiple(true)))]
pub struct Args {
    /// The GGUF model to serve.
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on; anything but loopback needs --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Keep the KV cache's disk tier here (`kv.sqlite`, shared with `hearth generate
    /// --data-dir` and the app), so cached prefixes survive restarts.
    #[arg(long, group = "shared_cache")]
    data_dir: Option<PathBuf>,
    /// Share KV blocks with other Hearth processes through this Redis server
    /// (`redis://127.0.0.1:6379`): a prompt's prefix missing from GPU, RAM and disk is asked
    /// there before it is computed, and computed blocks are written there. Down or slow, it is
    /// skipped (counted in the metrics), never an error.
    #[arg(long, value_name = "URL", group = "shared_cache")]
    redis: Option<String>,
    /// With --data-dir or --redis: KV blocks on disk or in Redis not used for this many
    /// seconds expire.
    #[arg(long, requires = "shared_cache")]
    cache_ttl: Option<u64>,
    /// Require `Authorization: Bearer KEY` on every route but /health.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Requests running at once (1 to 16): their decodes share one batched GPU step, and a new
    /// request's prefill runs in chunks between those steps.
    #[arg(long, default_value_t = hearth::server::config::DEFAULT_PARALLEL)]
    parallel: usize,
    /// Context length in tokens (default 4096, at most what the model was trained for).
    #[arg(long)]
    ctx: Option<u32>,
    /// Requests that may wait for the engine; more get 429 with Retry-After.
    #[arg(long, default_value_t = DEFAULT_MAX_QUEUE)]
    max_queue: usize,
}

fn parse_host(host: &str) -> Result<IpAddr> {
    match host {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "ip6-localhost" => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("--host {host} is not an IP address (or `localhost`)")),
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut config = ServerConfig::new(args.model);
    config.host = parse_host(&args.host)?;
    config.port = args.port;
    config.data_dir = args.data_dir;
    config.cache_ttl = args.cache_ttl.map(std::time::Duration::from_secs);
    config.redis = args.redis;
    config.api_key = args.api_key;
    config.parallel = args.parallel;
    config.ctx = args.ctx;
    config.max_queue = args.max_queue;
    // Refuse bad settings before the (slow) load.
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    eprintln!("hearth serve: loading {}", config.model.display());
    let server = Server::load(config).context("cannot start the server")?;
    let (id, ctx) = (server.model_id().to_string(), server.context());
    let served = runtime.block_on(server.serve(shutdown_signal(), |addr| {
        eprintln!("hearth serve: model `{id}` (context {ctx}) listening on http://{addr}");
    }));
    if let Err(e) = served {
        bail!("{e}");
    }
    eprintln!("hearth serve: stopped cleanly");
    Ok(())
}
