//! `/projects/:id/performance`: response times and errors by provider and model.

use crate::pages::planned::PlannedScreen;
use leptos::prelude::*;

/// How each provider and model performs for this project.
#[component]
pub fn PerformancePage() -> impl IntoView {
    view! {
        <PlannedScreen
            title="Performance"
            purpose="Measured from this project's own traffic."
            items=&[
                "Response time and time to first token by provider and model",
                "Success and error rates with a breakdown by error type",
                "Satisfaction (thumbs up/down) by provider",
                "A/B experiments between providers",
            ]
            test_id="performance-planned"
        />
    }
}
