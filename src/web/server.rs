//! HTTP routes and the WebSocket connection loop (axum on tokio).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use super::hub::{Client, Hub};
use super::TICK;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const CONDUCTOR_HTML: &str = include_str!("assets/conductor.html");
const CONDUCTOR_JS: &str = include_str!("assets/conductor.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How often a connection is pinged (browsers answer with a pong by themselves).
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Serves until `stopped` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    stopped: oneshot::Receiver<()>,
) {
    let app = Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/conductor.js",
            get(|| asset("text/javascript; charset=utf-8", CONDUCTOR_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route("/conductor", get(conductor_page))
        .route("/ws", get(upgrade))
        .with_state(hub);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await;
}

/// The hub's periodic work.
pub async fn tick(hub: Arc<Hub>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        hub.tick(Instant::now());
    }
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The conductor's page, only with the secret.
async fn conductor_page(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query.get("key") {
        Some(key) if hub.is_secret(key) => asset("text/html; charset=utf-8", CONDUCTOR_HTML).await,
        _ => {
            hub.stats().unauthorized.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::FORBIDDEN,
                "the conductor's page needs the key the console printed\n",
            )
                .into_response()
        }
    }
}

async fn upgrade(State(hub): State<Arc<Hub>>, ws: WebSocketUpgrade) -> Response {
    let stats = hub.stats().clone();
    let open = stats.connections.fetch_add(1, Ordering::Relaxed);
    if open as usize >= hub.options().max_clients {
        stats.connections.fetch_sub(1, Ordering::Relaxed);
        stats.refused_connections.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many participants connected\n",
        )
            .into_response();
    }
    let max = hub.options().max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade({
            let stats = stats.clone();
            move |_| {
                stats.connections.fetch_sub(1, Ordering::Relaxed);
            }
        })
        .on_upgrade(move |socket| async move {
            connection(socket, &hub).await;
            stats.connections.fetch_sub(1, Ordering::Relaxed);
        })
}

/// What ends a connection's loop.
enum Step {
    Go,
    Close,
}

/// One browser: its frames in, its replies, notices and state pushes out.
async fn connection(mut socket: WebSocket, hub: &Hub) {
    let options = hub.options().clone();
    let (outbox, mut inbox) = mpsc::channel::<Arc<str>>(options.outbox_frames.max(1));
    let mut client = hub.client(outbox, Instant::now());
    let mut state = hub.state_rx();
    let mut conductor_state = hub.conductor_rx();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let mut heard = Instant::now();
    loop {
        let step = tokio::select! {
            frame = socket.recv() => {
                heard = Instant::now();
                match frame {
                    Some(Ok(frame)) => incoming(&mut socket, hub, &mut client, frame, &options).await,
                    Some(Err(_)) => { hub.malformed(); Step::Close }
                    None => Step::Close,
                }
            }
            Ok(()) = state.changed(), if client.wants_state() && !client.is_conductor() => {
                let frame = state.borrow_and_update().clone();
                send(&mut socket, &frame, &options).await
            }
            Ok(()) = conductor_state.changed(), if client.is_conductor() => {
                let frame = conductor_state.borrow_and_update().clone();
                send(&mut socket, &frame, &options).await
            }
            Some(frame) = inbox.recv() => send(&mut socket, &frame, &options).await,
            _ = ping.tick() => {
                if heard.elapsed() > options.idle_timeout {
                    Step::Close
                } else {
                    write(&mut socket, Message::Ping(Default::default()), &options).await
                }
            }
        };
        if let Step::Close = step {
            break;
        }
    }
    hub.disconnect(&client, Instant::now());
}

async fn incoming(
    socket: &mut WebSocket,
    hub: &Hub,
    client: &mut Client,
    frame: Message,
    options: &super::WebOptions,
) -> Step {
    match frame {
        Message::Text(text) => match hub.frame(client, text.as_str(), Instant::now()) {
            Some(reply) => send(socket, &reply, options).await,
            None => Step::Go,
        },
        Message::Binary(_) => {
            hub.malformed();
            Step::Go
        }
        Message::Ping(_) | Message::Pong(_) => Step::Go,
        Message::Close(_) => Step::Close,
    }
}

async fn send(socket: &mut WebSocket, frame: &str, options: &super::WebOptions) -> Step {
    write(socket, Message::Text(frame.into()), options).await
}

/// Writes one frame within the write timeout.
async fn write(socket: &mut WebSocket, message: Message, options: &super::WebOptions) -> Step {
    match tokio::time::timeout(options.write_timeout, socket.send(message)).await {
        Ok(Ok(())) => Step::Go,
        _ => Step::Close,
    }
}
