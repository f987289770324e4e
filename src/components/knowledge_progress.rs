//! Where a project's knowledge index stands, as a progress bar with words:
//! rendered on the server from the status the page loaded, then kept live in
//! the browser by the status event stream
//! (`GET /api/projects/:id/knowledge/events`). The Knowledge tab and the
//! settings page both show it.

use crate::model::knowledge::{KnowledgeState, KnowledgeStatus};
use leptos::prelude::*;

/// The status to show: `initial` (from the server) until the live stream
/// says otherwise. The stream opens after hydration and closes with the page.
pub fn use_live_status(
    project_id: Memo<String>,
    initial: KnowledgeStatus,
) -> RwSignal<KnowledgeStatus> {
    let status = RwSignal::new(initial);
    Effect::new(move |_| {
        let project_id = project_id.get();
        #[cfg(feature = "hydrate")]
        browser::follow(&project_id, status);
        #[cfg(not(feature = "hydrate"))]
        let _ = (project_id, status);
    });
    status
}

/// "2 min 5 s", "40 s".
fn duration_text(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        _ => format!("{} min {} s", seconds / 60, seconds % 60),
    }
}

/// The sentence under the bar.
pub fn status_text(status: &KnowledgeStatus) -> String {
    let model = if status.model_name.is_empty() {
        "no embedding model".to_owned()
    } else {
        status.model_name.clone()
    };
    match status.state {
        KnowledgeState::Building => {
            let eta = status
                .eta_seconds
                .map(|s| format!(" · about {} left", duration_text(s)))
                .unwrap_or_default();
            let serving = match &status.serving_model {
                Some(serving) if *serving != status.model => {
                    format!(" · answers use the {serving} index until it is done")
                }
                _ => String::new(),
            };
            format!(
                "Embedding {} of {} chunks with {model} ({} %){eta}{serving}",
                status.done,
                status.total,
                status.percent()
            )
        }
        KnowledgeState::Ready if status.total == 0 => {
            format!("No documents yet; they will be embedded with {model}")
        }
        KnowledgeState::Ready => format!("Ready: {} chunks embedded with {model}", status.total),
        KnowledgeState::Failed => {
            let serving = status
                .serving_model
                .as_ref()
                .map(|serving| format!("; answers still use the {serving} index"))
                .unwrap_or_default();
            format!(
                "Embedding with {model} stopped at {} of {} chunks: {}{serving}. It resumes with the next change",
                status.done,
                status.total,
                status.error.as_deref().unwrap_or("unknown error")
            )
        }
    }
}

/// The bar and its sentence.
#[component]
pub fn KnowledgeProgress(status: RwSignal<KnowledgeStatus>) -> impl IntoView {
    let state_name = move || match status.with(|s| s.state) {
        KnowledgeState::Building => "building",
        KnowledgeState::Ready => "ready",
        KnowledgeState::Failed => "failed",
    };
    view! {
        <div class="knowledge-progress" data-test="knowledge-status" data-state=state_name>
            <label for="knowledge-progress-bar">"Knowledge index"</label>
            <progress id="knowledge-progress-bar" data-test="knowledge-progress"
                max=move || status.with(|s| s.total.max(1))
                value=move || status.with(|s| if s.total == 0 { 1 } else { s.done })>
                {move || format!("{} %", status.with(KnowledgeStatus::percent))}
            </progress>
            <p class="muted" role="status" data-test="knowledge-status-text">
                {move || status.with(status_text)}
            </p>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::KnowledgeStatus;
    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    /// Opens the status stream and writes each `status` event into
    /// `status`; the stream closes when the effect runs again or the page goes.
    pub fn follow(project_id: &str, status: RwSignal<KnowledgeStatus>) {
        let url = format!("/api/projects/{project_id}/knowledge/events");
        let Ok(source) = web_sys::EventSource::new(&url) else {
            return;
        };
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let parsed = event
                    .data()
                    .as_string()
                    .and_then(|data| serde_json::from_str::<KnowledgeStatus>(&data).ok());
                if let Some(parsed) = parsed {
                    status.try_set(parsed);
                }
            },
        );
        let _ =
            source.add_event_listener_with_callback("status", listener.as_ref().unchecked_ref());
        let kept = send_wrapper::SendWrapper::new((source, listener));
        on_cleanup(move || kept.0.close());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: KnowledgeState, done: i64, total: i64) -> KnowledgeStatus {
        KnowledgeStatus {
            state,
            done,
            total,
            model: "voyage-3.5".into(),
            model_name: "Voyage 3.5".into(),
            dimensions: 1024,
            serving_model: Some("text-embedding-3-small".into()),
            eta_seconds: Some(75),
            error: Some("rate limited".into()),
            documents: 3,
        }
    }

    #[test]
    fn the_sentence_says_what_is_happening() {
        assert_eq!(
            status_text(&status(KnowledgeState::Building, 500, 2000)),
            "Embedding 500 of 2000 chunks with Voyage 3.5 (25 %) · about 1 min 15 s left · answers use the text-embedding-3-small index until it is done"
        );
        assert_eq!(
            status_text(&status(KnowledgeState::Ready, 2000, 2000)),
            "Ready: 2000 chunks embedded with Voyage 3.5"
        );
        assert!(status_text(&status(KnowledgeState::Failed, 10, 20))
            .contains("stopped at 10 of 20 chunks: rate limited; answers still use"));
        assert_eq!(status(KnowledgeState::Ready, 0, 0).percent(), 100);
    }
}
