//! `/projects/:id/costs`: cost analysis (spec mockup 3).

use crate::pages::planned::PlannedScreen;
use leptos::prelude::*;

/// What the project spends and what it would have spent elsewhere.
#[component]
pub fn CostsPage() -> impl IntoView {
    view! {
        <PlannedScreen
            title="Cost analysis"
            purpose="Exact spend from recorded usage, to the nano-dollar."
            items=&[
                "Total spend, conversations and average cost per conversation for a period",
                "\"If you had used …\" for every other model, re-priced from the same tokens",
                "Spend over time, budgets, alerts and month-end projection",
                "Token analytics with suggestions computed from your traffic",
            ]
            test_id="costs-planned"
        />
    }
}
