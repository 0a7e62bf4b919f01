//! Settings → "Local API server": the app runs `hearth serve` in process (the core's
//! `hearth::server`, the same OpenAI-compatible routes, scheduler and `/metrics`) for the model
//! it has loaded, as LM Studio does. Loopback only unless the person allows other computers,
//! which needs an API key. The server shares the app's GPU device and its KV cache on disk
//! (`kv.sqlite` in the app's data folder: prefixes computed by the chat are restored by API
//! requests and the other way round), but holds its own copy of the weights on the GPU: the
//! chat engine drives its model alone, so serving costs the model's weights a second time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;

use hearth::server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::state::AppData;

type CmdResult<T> = Result<T, String>;

/// What the page asks for when it turns the server on.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerRequest {
    pub port: u16,
    /// Empty or absent: no key (loopback only).
    pub api_key: Option<String>,
    /// Listen on every interface (needs a key) instead of 127.0.0.1.
    pub allow_network: bool,
}

/// The server as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerStatus {
    pub running: bool,
    /// `http://127.0.0.1:8080/v1` while running.
    pub base_url: Option<String>,
    /// The API id clients name the model by.
    pub model_id: Option<String>,
    pub key_required: bool,
}

/// A running server: how to stop it and what it serves.
struct Running {
    status: ApiServerStatus,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tauri::async_runtime::JoinHandle<()>,
}

/// The app's one server slot.
#[derive(Default)]
pub struct ApiServerSlot {
    running: Mutex<Option<Running>>,
}

impl ApiServerSlot {
    fn status(&self) -> ApiServerStatus {
        let mut running = match self.running.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A server that stopped on its own (an error while serving) is no longer running.
        if running
            .as_ref()
            .is_some_and(|r| r.done.inner().is_finished())
        {
            *running = None;
        }
        running
            .as_ref()
            .map(|r| r.status.clone())
            .unwrap_or_default()
    }

    fn take(&self) -> Option<Running> {
        match self.running.lock() {
            Ok(mut r) => r.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// The server's configuration for `model` from the page's request; refuses what the server
/// would refuse, in the page's words.
pub fn server_config(
    model: PathBuf,
    data_dir: PathBuf,
    context: u32,
    req: &ApiServerRequest,
) -> Result<ServerConfig, String> {
    let api_key = req
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    if req.allow_network && api_key.is_none() {
        return Err(
            "Other computers may use the server only with an API key: set one first".into(),
        );
    }
    let mut config = ServerConfig::new(model);
    config.host = if req.allow_network {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    config.port = req.port;
    config.api_key = api_key;
    config.data_dir = Some(data_dir);
    config.ctx = Some(context);
    Ok(config)
}

/// `http://HOST:PORT/v1` for clients on this computer (a wildcard bind is reached on loopback).
pub fn base_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}/v1", SocketAddr::new(host, addr.port()))
}

#[tauri::command]
pub fn api_server_status(state: State<'_, AppData>) -> CmdResult<ApiServerStatus> {
    Ok(state.api_server.status())
}

/// Starts serving the loaded model (stopping a server already running first).
#[tauri::command]
pub async fn start_api_server(
    state: State<'_, AppData>,
    request: ApiServerRequest,
) -> CmdResult<ApiServerStatus> {
    let model = state
        .status()
        .model
        .ok_or("Load a model first: the server serves the model the app has loaded")?;
    stop(&state).await;
    let settings = state
        .store
        .load_settings()
        .await
        .map_err(|e| e.to_string())?
        .settings;
    let data_dir = state
        .models_dir
        .parent()
        .map(PathBuf::from)
        .ok_or("the app's data folder is unknown")?;
    let config = server_config(
        PathBuf::from(&model.path),
        data_dir,
        settings.context_length,
        &request,
    )?;
    let key_required = config.api_key.is_some();
    let gpu = state
        .gpu
        .clone()
        .ok_or("no GPU adapter: the server cannot run")?;
    let server = tauri::async_runtime::spawn_blocking(move || Server::load_on(config, gpu))
        .await
        .map_err(|e| format!("starting the server stopped unexpectedly: {e}"))?
        .map_err(|e| e.to_string())?;
    let model_id = server.model_id().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<Result<SocketAddr, String>>();
    let done = tauri::async_runtime::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let result = server
            .serve(shutdown, |addr| {
                if let Some(tx) = addr_tx.take() {
                    let _ = tx.send(Ok(addr));
                }
            })
            .await;
        if let Err(e) = result {
            eprintln!("hearth: the local API server stopped: {e}");
            if let Some(tx) = addr_tx.take() {
                let _ = tx.send(Err(e.to_string()));
            }
        }
    });
    let addr = addr_rx
        .await
        .map_err(|_| "the server stopped before it listened".to_string())??;
    let status = ApiServerStatus {
        running: true,
        base_url: Some(base_url(addr)),
        model_id: Some(model_id),
        key_required,
    };
    if let Ok(mut slot) = state.api_server.running.lock() {
        *slot = Some(Running {
            status: status.clone(),
            stop: stop_tx,
            done,
        });
    }
    Ok(status)
}

#[tauri::command]
pub async fn stop_api_server(state: State<'_, AppData>) -> CmdResult<ApiServerStatus> {
    stop(&state).await;
    Ok(ApiServerStatus::default())
}

/// Stops the running server, if any: open requests finish (or end at their next token after
/// the grace period), the engine drains and its new blocks reach the disk.
pub async fn stop(state: &AppData) {
    if let Some(running) = state.api_server.take() {
        let _ = running.stop.send(());
        let _ = running.done.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(port: u16, key: Option<&str>, network: bool) -> ApiServerRequest {
        ApiServerRequest {
            port,
            api_key: key.map(str::to_owned),
            allow_network: network,
        }
    }

    #[test]
    fn loopback_by_default_and_the_network_only_with_a_key() {
        let c = server_config("m.gguf".into(), "/d".into(), 2048, &req(8080, None, false)).unwrap();
        assert!(c.host.is_loopback());
        assert_eq!((c.port, c.api_key.clone(), c.ctx), (8080, None, Some(2048)));
        assert_eq!(c.data_dir, Some(PathBuf::from("/d")));
        let err = server_config(
            "m.gguf".into(),
            "/d".into(),
            2048,
            &req(8080, Some("  "), true),
        )
        .unwrap_err();
        assert!(err.contains("API key"), "{err}");
        let c = server_config(
            "m.gguf".into(),
            "/d".into(),
            2048,
            &req(9000, Some(" k1 "), true),
        )
        .unwrap();
        assert!(c.host.is_unspecified());
        assert_eq!(c.api_key.as_deref(), Some("k1"));
        c.validate().unwrap();
    }

    #[test]
    fn base_urls_are_reachable_from_this_computer() {
        assert_eq!(
            base_url("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(
            base_url("0.0.0.0:9000".parse().unwrap()),
            "http://127.0.0.1:9000/v1"
        );
    }
}
