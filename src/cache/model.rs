//! Model check of the cache's coordination with [`shuttle`], which runs each scenario many
//! times under a randomised scheduler (and under PCT, which is built to find ordering bugs of
//! small depth), checking every schedule for deadlocks, panics and the assertions below.
//!
//! What runs is the cache's own decision and bookkeeping code: [`State`] and its methods
//! (`step`, `started`, `succeeded`, `failed`, `ended`, `invalidate`) and [`Entry::new`]. Around
//! it, a small harness plays the parts that need a runtime, the same way `TokenCache` and
//! `Core` do, using shuttle's primitives so that every lock, load and store is a point where
//! the scheduler may switch:
//!
//! - the state lock is a `shuttle::sync::Mutex<State>`, and the current-token slot (an
//!   `ArcSwapOption` in the cache, read lock-free) is a mutex of its own, so each load and
//!   store is one atomic step and a request may read it at any moment;
//! - a fetch is a shuttle task holding a drop guard that calls `State::ended`, like
//!   `ClearFetch`, and waiters share its result through a `Shared` future, like `FetchFuture`;
//! - the clock is a counter that a scenario's clock task moves; moving it past a token's
//!   refresh time marks the token stale, which is what the refresh timer and the hot path's
//!   coarse-clock check do together.
//!
//! Run: `cargo test --lib cache::model` (part of the normal suite). Set `SHUTTLE_ITERATIONS`
//! for a longer run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shuttle::future::{self as task, AbortHandle, JoinHandle};
use shuttle::sync::Mutex;
use shuttle::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use tokio::time::Instant;

use super::entry::{Config, Entry};
// Waiters share a fetch's result through the cache's own `FetchFuture`.
use super::core::{FetchFuture as Handle, FetchResult};
use super::state::{Invalidation, State, Step};
use crate::error::{TokenError, TokenErrorKind};
use crate::token::Token;

const LIFETIME: Duration = Duration::from_secs(60);
/// With `LIFETIME`, `CONFIG` and no jitter, a token is refreshed 50 s after it was received.
const INTO_REFRESH_WINDOW: Duration = Duration::from_secs(51);

const CONFIG: Config = Config {
    refresh_margin: Duration::from_secs(10),
    refresh_jitter: Duration::ZERO,
    initial_backoff: Duration::from_secs(1),
    max_backoff: Duration::from_secs(60),
    max_retry_after: Duration::from_secs(300),
    fetch_timeout: Duration::from_secs(30),
    invalidation_cooldown: Duration::from_secs(5),
    max_wait: Duration::from_secs(10),
};

/// What the model's token source answers, call after call (then tokens forever).
#[derive(Clone, Copy, Debug)]
enum Answer {
    Token,
    Fail,
}

/// How a request was served.
struct Served {
    result: FetchResult,
    /// It waited for a fetch (`Step::Wait` or `Step::Start`).
    waited: bool,
}

struct Model {
    /// The cache's lock. Never held across `.await`, as in the cache.
    state: Mutex<State<Handle>>,
    /// The current token (`Core::current`). Stored only with `state` locked, as in the cache.
    current: Mutex<Option<Arc<Entry>>>,
    base: Instant,
    /// Model time in milliseconds since `base`.
    clock_ms: AtomicU64,
    answers: Mutex<VecDeque<Answer>>,
    /// Calls to the source, and how many are running at once (single-flight: never above 1).
    calls: AtomicUsize,
    running: AtomicUsize,
    /// Every fetch task, to abort one (cancellation) or to wait for all at the end.
    tasks: Mutex<Vec<(AbortHandle, Handle)>>,
}

impl Model {
    fn new(answers: &[Answer]) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            current: Mutex::new(None),
            base: Instant::now(),
            clock_ms: AtomicU64::new(0),
            answers: Mutex::new(answers.iter().copied().collect()),
            calls: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.clock_ms.load(SeqCst))
    }

    fn load(&self) -> Option<Arc<Entry>> {
        self.current.lock().unwrap().clone()
    }

    /// Moves the clock; a token whose refresh time has come is marked stale (the refresh
    /// timer, and the hot path's coarse-clock check).
    fn advance(&self, by: Duration) {
        self.clock_ms.fetch_add(by.as_millis() as u64, SeqCst);
        let now = self.now();
        if let Some(entry) = self.load()
            && !entry.timing.is_fresh_at(now)
        {
            entry.mark_stale();
        }
    }

    /// A request, as `TokenCache::entry` serves it: the fast path, then `acquire`.
    async fn request(self: Arc<Self>) -> Served {
        let now = self.now();
        if let Some(entry) = self.load()
            && entry.is_fresh()
            && entry.timing.is_fresh_at(now)
        {
            return Served {
                result: Ok(entry),
                waited: false,
            };
        }
        let (wait, waited) = {
            let mut state = self.state.lock().unwrap();
            match state.step(now, self.load()) {
                Step::Use(entry) => (Err(Ok(entry)), false),
                Step::UseAndStart(entry, id) => {
                    let _refresh = self.start(&mut state, id, now);
                    (Err(Ok(entry)), false)
                }
                Step::Wait(handle, _) => (Ok(handle), true),
                Step::Start(id) => (Ok(self.start(&mut state, id, now)), true),
                Step::Fail(error) => (Err(Err(error)), false),
            }
        };
        let result = match wait {
            Ok(handle) => handle.await,
            Err(result) => result,
        };
        if let Ok(entry) = &result {
            // Whatever the interleaving, no request is handed an expired token.
            assert!(
                entry.timing.is_valid_at(now),
                "served a token that had expired"
            );
        }
        Served { result, waited }
    }

    /// `TokenCache::start_fetch`: a task of its own, with a guard that ends the fetch however
    /// the task ends.
    fn start(self: &Arc<Self>, state: &mut State<Handle>, id: u64, now: Instant) -> Handle {
        let guard = EndOnDrop {
            model: Arc::clone(self),
            id,
        };
        let model = Arc::clone(self);
        let join = task::spawn(async move {
            let _guard = guard;
            model.calls.fetch_add(1, SeqCst);
            let running = Running::start(&model.running);
            // The network round trip: anything may happen meanwhile, cancellation included.
            task::yield_now().await;
            let answer = model.answers.lock().unwrap().pop_front();
            let received_at = model.now();
            let result = match answer.unwrap_or(Answer::Token) {
                Answer::Token => Ok(Token::new(format!("token-{id}"))
                    .with_received_at(received_at)
                    .with_expires_at(received_at + LIFETIME)),
                Answer::Fail => Err(TokenError::new(
                    TokenErrorKind::Unavailable,
                    "endpoint down",
                )),
            };
            drop(running);
            model.complete(id, result)
        });
        let abort = join.abort_handle();
        let handle: Handle = async move {
            match join.await {
                Ok(result) => result,
                Err(_) => Err(TokenError::new(TokenErrorKind::Other, "fetch cancelled")),
            }
        }
        .boxed()
        .shared();
        state.started(id, now, CONFIG.fetch_timeout, handle.clone());
        self.tasks.lock().unwrap().push((abort, handle.clone()));
        handle
    }

    /// `Core::complete`.
    fn complete(&self, id: u64, result: Result<Token, TokenError>) -> FetchResult {
        let now = self.now();
        let mut state = self.state.lock().unwrap();
        let entry = result.and_then(|token| {
            let generation = state.next_id();
            Entry::new(token, now, generation, &CONFIG, 0.5).map(Arc::new)
        });
        match entry {
            Ok(entry) => {
                state.succeeded(id);
                *self.current.lock().unwrap() = Some(Arc::clone(&entry));
                Ok(entry)
            }
            Err(error) => {
                state.failed(id, &error, now, &CONFIG, 0.5);
                Err(error)
            }
        }
    }

    /// `Core::invalidate` with the cooldown: a response said token `generation` was refused.
    fn refused(&self, generation: u64) -> Invalidation {
        let now = self.now();
        let mut state = self.state.lock().unwrap();
        let current = self.load();
        let verdict = state.invalidate(
            now,
            current.as_deref(),
            generation,
            Some(CONFIG.invalidation_cooldown),
        );
        if verdict == Invalidation::Drop {
            *self.current.lock().unwrap() = None;
        }
        verdict
    }

    /// Waits for every fetch started so far (and any they lead to).
    async fn settle(&self) {
        loop {
            let handles: Vec<Handle> = self
                .tasks
                .lock()
                .unwrap()
                .iter()
                .map(|(_, h)| h.clone())
                .collect();
            for handle in &handles {
                let _ = handle.clone().await;
            }
            if self.tasks.lock().unwrap().len() == handles.len() {
                break;
            }
        }
        let state = self.state.lock().unwrap();
        assert!(
            state.fetching.is_none(),
            "a fetch is still recorded after every fetch ended: fetch {:?} of {} tasks",
            state.fetching.as_ref().map(|f| f.id),
            self.tasks.lock().unwrap().len()
        );
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }
}

/// `ClearFetch`.
struct EndOnDrop {
    model: Arc<Model>,
    id: u64,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.model.state.lock().unwrap().ended(self.id);
    }
}

/// One call to the source in progress; the call ends when this is dropped, also when its task
/// is cancelled mid-call.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(running: &'a AtomicUsize) -> Self {
        let now = running.fetch_add(1, SeqCst) + 1;
        assert_eq!(now, 1, "two calls to the token source at once");
        Self(running)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod scenarios {
    use std::collections::HashSet;

    use super::*;

    /// Runs `scenario` under the random scheduler and under PCT (depth 3).
    fn check(scenario: impl Fn(Arc<Model>) -> BoxFuture<'static, ()> + Send + Sync + 'static) {
        let iterations = std::env::var("SHUTTLE_ITERATIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        let scenario = Arc::new(scenario);
        let random = Arc::clone(&scenario);
        shuttle::check_random(move || task::block_on(random(Model::new(&[]))), iterations);
        shuttle::check_pct(
            move || task::block_on(scenario(Model::new(&[]))),
            iterations,
            3,
        );
    }

    fn requests(model: &Arc<Model>, n: usize) -> Vec<JoinHandle<Served>> {
        (0..n)
            .map(|_| task::spawn(Arc::clone(model).request()))
            .collect()
    }

    async fn served(handles: Vec<JoinHandle<Served>>) -> Vec<Served> {
        let mut served = Vec::new();
        for handle in handles {
            served.push(handle.await.expect("request task"));
        }
        served
    }

    /// A first token, fetched before the scenario's concurrent part.
    async fn warm(model: &Arc<Model>) -> Arc<Entry> {
        let entry = Arc::clone(model)
            .request()
            .await
            .result
            .expect("first token");
        model.settle().await;
        entry
    }

    fn answers(model: &Model, answers: &[Answer]) {
        model.answers.lock().unwrap().extend(answers);
    }

    #[test]
    fn cold_start_is_single_flight() {
        check(|model| {
            async move {
                let served = served(requests(&model, 3)).await;
                model.settle().await;
                assert_eq!(model.calls(), 1, "one fetch for concurrent cold requests");
                let generations: HashSet<u64> = served
                    .iter()
                    .map(|s| s.result.as_ref().expect("token").generation)
                    .collect();
                assert_eq!(generations.len(), 1, "everyone got the same token");
            }
            .boxed()
        });
    }

    #[test]
    fn early_refresh_makes_nobody_wait_and_runs_once() {
        check(|model| {
            async move {
                let first = warm(&model).await;
                let clock = {
                    let model = Arc::clone(&model);
                    task::spawn(async move { model.advance(INTO_REFRESH_WINDOW) })
                };
                let mut served = served(requests(&model, 3)).await;
                clock.await.unwrap();
                // One request surely after the clock moved.
                served.push(Arc::clone(&model).request().await);
                model.settle().await;
                for s in &served {
                    assert!(
                        !s.waited,
                        "a request waited although a valid token was cached"
                    );
                    assert!(s.result.is_ok());
                }
                assert_eq!(model.calls(), 2, "exactly one refresh");
                let current = model.load().expect("a token");
                assert!(
                    current.generation > first.generation,
                    "the refresh was stored"
                );
            }
            .boxed()
        });
    }

    #[test]
    fn a_401_drops_only_the_token_it_carried() {
        check(|model| {
            async move {
                let old = warm(&model).await;
                model.advance(INTO_REFRESH_WINDOW);
                let refused = {
                    let model = Arc::clone(&model);
                    let generation = old.generation;
                    task::spawn(async move { model.refused(generation) })
                };
                let served = served(requests(&model, 2)).await;
                let verdict = refused.await.unwrap();
                model.settle().await;
                assert!(served.iter().all(|s| s.result.is_ok()));
                let after = Arc::clone(&model).request().await;
                model.settle().await;
                let new = after.result.expect("a token after the refresh");
                assert!(new.generation > old.generation);
                assert_eq!(model.calls(), 2, "the refresh and the 401 made one fetch");
                assert_eq!(
                    model.load().map(|e| e.generation),
                    Some(new.generation),
                    "the new token is still cached"
                );
                // The cooldown: a 401 for the new token is honoured only if none dropped a
                // token within it.
                let expected = match verdict {
                    Invalidation::Drop => Invalidation::Cooldown,
                    Invalidation::NotCurrent => Invalidation::Drop,
                    Invalidation::Cooldown => unreachable!("no earlier 401"),
                };
                assert_eq!(model.refused(new.generation), expected);
            }
            .boxed()
        });
    }

    #[test]
    fn a_failure_without_a_token_fails_everyone_then_backs_off() {
        check(|model| {
            async move {
                answers(&model, &[Answer::Fail]);
                let served = served(requests(&model, 3)).await;
                model.settle().await;
                assert!(served.iter().all(|s| s.result.is_err()));
                assert_eq!(model.calls(), 1, "one fetch, whose error everyone shares");
                // While backing off: fail fast, no new fetch.
                let again = Arc::clone(&model).request().await;
                assert!(again.result.is_err() && !again.waited);
                assert_eq!(model.calls(), 1);
                // After the backoff, the next request fetches again.
                model.advance(Duration::from_secs(2));
                let recovered = Arc::clone(&model).request().await;
                model.settle().await;
                assert!(recovered.result.is_ok());
                assert_eq!(model.calls(), 2);
            }
            .boxed()
        });
    }

    #[test]
    fn a_failed_refresh_keeps_serving_the_valid_token() {
        check(|model| {
            async move {
                answers(&model, &[Answer::Token, Answer::Fail]);
                let token = warm(&model).await;
                model.advance(INTO_REFRESH_WINDOW);
                let served = served(requests(&model, 3)).await;
                model.settle().await;
                for s in &served {
                    let entry = s.result.as_ref().expect("the valid token");
                    assert_eq!(entry.generation, token.generation);
                    assert!(!s.waited);
                }
                assert_eq!(model.calls(), 2, "one failed refresh");
                assert!(model.state.lock().unwrap().failure.is_some());
                // Backing off: the token is still served and nothing is fetched.
                let again = Arc::clone(&model).request().await;
                assert_eq!(again.result.expect("token").generation, token.generation);
                assert_eq!(model.calls(), 2);
            }
            .boxed()
        });
    }

    #[test]
    fn cancelled_fetches_and_requests_lose_nothing() {
        check(cancel_scenario)
    }
    fn cancel_scenario(model: Arc<Model>) -> BoxFuture<'static, ()> {
        {
            async move {
                let mut handles = requests(&model, 2);
                let dropped = handles.pop().unwrap();
                // Cancels the first fetch at whatever point it has reached.
                let chaos = {
                    let model = Arc::clone(&model);
                    task::spawn(async move {
                        loop {
                            let first = model.tasks.lock().unwrap().first().map(|t| t.0.clone());
                            if let Some(abort) = first {
                                abort.abort();
                                break;
                            }
                            task::yield_now().await;
                        }
                    })
                };
                dropped.abort();
                // The other request ends, with a token or the cancellation error.
                let survivor = served(handles).await.pop().unwrap();
                chaos.await.unwrap();
                // A cancelled task stops at its next await point: it may still have started
                // a fetch.
                let _ = dropped.await;
                model.settle().await;
                assert_eq!(model.running.load(SeqCst), 0);
                // Whatever was cancelled, the next request gets a token.
                let next = Arc::clone(&model).request().await;
                model.settle().await;
                assert!(next.result.is_ok(), "{:?}", next.result.err());
                assert!(model.calls() <= 2);
                if survivor.result.is_ok() {
                    assert!(model.load().is_some());
                }
            }
            .boxed()
        }
    }
}
