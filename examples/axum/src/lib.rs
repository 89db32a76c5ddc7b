//! An axum app served by Apache unchanged: routes, JSON, path parameters, shared state, a
//! streamed request and response, the environ, and `tracing` into Apache's error log.
//!
//! ```apache
//! RGIScriptAlias /axum /path/to/libexample_axum.so
//! RGIOption greeting Bonjour
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

#[derive(Clone, Serialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

/// State shared by every request this process serves for the application group.
#[derive(Clone)]
struct AppState {
    greeting: Arc<str>,
    users: Arc<RwLock<Vec<User>>>,
    visits: Arc<AtomicU64>,
}

fn make_router(config: &rgi::CreateContext<'_>) -> Router {
    let state = AppState {
        greeting: config.option("greeting").unwrap_or("Hello").into(),
        users: Arc::new(RwLock::new(vec![User { id: 1, name: "Ada".into() }])),
        visits: Arc::default(),
    };
    Router::new()
        .route("/", get(hello))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/visits", post(visit))
        .route("/echo", post(echo))
        .route("/ticks", get(ticks))
        .route("/environ", get(environ))
        .route("/log", get(log))
        .route("/panic", get(panic))
        .with_state(state)
}

rgi::export_service!(|config| make_router(config));

async fn hello(State(state): State<AppState>) -> String {
    format!("{}, World!", state.greeting)
}

async fn list_users(State(state): State<AppState>) -> Json<Vec<User>> {
    Json(state.users.read().unwrap().clone())
}

async fn create_user(State(state): State<AppState>, Json(new): Json<NewUser>) -> (StatusCode, Json<User>) {
    let mut users = state.users.write().unwrap();
    let user = User { id: users.len() as u64 + 1, name: new.name };
    users.push(user.clone());
    (StatusCode::CREATED, Json(user))
}

async fn get_user(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    match state.users.read().unwrap().iter().find(|u| u.id == id) {
        Some(user) => Json(user.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(serde_json_error(&format!("no user {id}")))).into_response(),
    }
}

fn serde_json_error(message: &str) -> std::collections::BTreeMap<&'static str, String> {
    [("error", message.to_string())].into()
}

async fn visit(State(state): State<AppState>) -> String {
    (state.visits.fetch_add(1, Ordering::Relaxed) + 1).to_string()
}

/// The request body streamed back as it arrives.
async fn echo(body: Body) -> Body {
    body
}

#[derive(Deserialize)]
struct Ticks {
    n: u32,
}

/// `n` lines, one every 10 ms (tokio's timer, on the process's runtime).
async fn ticks(Query(Ticks { n }): Query<Ticks>) -> Body {
    let lines = futures_util::stream::unfold(0, move |i| async move {
        if i == n {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok::<_, std::convert::Infallible>(format!("tick {i}\n")), i + 1))
    });
    Body::from_stream(lines)
}

async fn environ(Extension(env): Extension<rgi::http::Environ>) -> Json<std::collections::BTreeMap<String, String>> {
    let keys = ["SCRIPT_NAME", "PATH_INFO", "REQUEST_METHOD", "REMOTE_ADDR", "rgi.request_id", "rgi.application_group"];
    Json(keys.iter().filter_map(|k| Some((k.to_string(), env.get(k)?.to_string()))).collect())
}

/// Events at each level, one from a spawned task: every line carries the request's id.
async fn log(Extension(env): Extension<rgi::http::Environ>) -> String {
    tracing::debug!("a debug event");
    tracing::info!(answer = 42, "an info event");
    tracing::warn!("a warning");
    tokio::spawn(async { tracing::warn!("a warning from a spawned task") }.in_current_span()).await.unwrap();
    env.get("rgi.request_id").unwrap_or_default().to_string()
}

async fn panic() -> &'static str {
    panic!("the panic route panicked")
}
