//! The authorization matrix: every JSON route (from the one endpoint table,
//! `ENDPOINTS`) and every server function (checked against the functions the
//! server registered) called by every kind of caller — anonymous, a stranger,
//! a member, the owner, the workspace admin, a token of each scope, another
//! project's token and a revoked token — and each answer's status compared
//! with what the route's `Auth` says that caller gets.

use crate::helpers::{new_client, post_with, Engine, TestApp, PASSWORD};
use cover::model::access::Scope;
use cover::model::account::ProjectRole;
use cover::server::rest::openapi::{Auth, Endpoint, RequestBody, ENDPOINTS};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Stranger,
    Member,
    Owner,
    Admin,
    Token(Scope),
    OtherProjectToken,
    RevokedToken,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::Stranger,
    Caller::Member,
    Caller::Owner,
    Caller::Admin,
    Caller::Token(Scope::Chat),
    Caller::Token(Scope::Read),
    Caller::Token(Scope::Manage),
    Caller::OtherProjectToken,
    Caller::RevokedToken,
];

/// What a caller should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Through to the handler: its success status.
    Allowed,
    /// Refused with this status.
    Refused(u16),
}

impl Caller {
    fn person_role(self) -> Option<ProjectRole> {
        match self {
            Caller::Member => Some(ProjectRole::Member),
            Caller::Owner => Some(ProjectRole::Owner),
            Caller::Admin => Some(ProjectRole::Admin),
            _ => None,
        }
    }

    fn is_person(self) -> bool {
        matches!(
            self,
            Caller::Stranger | Caller::Member | Caller::Owner | Caller::Admin
        )
    }
}

/// The rule: what `auth` means for `caller`.
fn expected(auth: Auth, caller: Caller) -> Expect {
    use Expect::{Allowed, Refused};
    match auth {
        Auth::Public => Allowed,
        Auth::Session if caller.is_person() => Allowed,
        Auth::Session => Refused(401),
        Auth::Admin => match caller {
            Caller::Admin => Allowed,
            Caller::Stranger | Caller::Member | Caller::Owner => Refused(403),
            _ => Refused(401),
        },
        Auth::Project { scope, tokens } => match caller {
            Caller::Anonymous | Caller::RevokedToken => Refused(401),
            Caller::Stranger => Refused(404),
            Caller::Token(_) | Caller::OtherProjectToken if !tokens => Refused(401),
            Caller::OtherProjectToken => Refused(404),
            Caller::Token(held) if held == scope => Allowed,
            Caller::Token(_) => Refused(403),
            person => match person.person_role() {
                Some(role) if role.grants(scope) => Allowed,
                _ => Refused(403),
            },
        },
        Auth::ProjectManager => match caller {
            Caller::Anonymous | Caller::RevokedToken => Refused(401),
            Caller::Stranger | Caller::Member => Refused(403),
            Caller::Token(Scope::Manage) | Caller::OtherProjectToken => Allowed,
            Caller::Token(_) => Refused(403),
            Caller::Owner | Caller::Admin => Allowed,
        },
        // The gateway acts for the token's own project; a session is no token.
        Auth::ProjectToken { scope } => match caller {
            Caller::Token(held) if held == scope => Allowed,
            Caller::Token(_) => Refused(403),
            Caller::OtherProjectToken => Allowed,
            _ => Refused(401),
        },
        // Only the operator's metrics token, which no caller here holds.
        Auth::Operator => Refused(401),
    }
}

/// The project, its people, tokens and things to act on.
struct World {
    app: TestApp,
    project: String,
    conversation: String,
    /// A conversation pinned to GPT, which can draw pictures.
    drawing: String,
    /// A running experiment of the project.
    experiment: String,
    message: String,
    /// A knowledge base document of the project.
    document: String,
    stranger: Client,
    member: Client,
    owner: Client,
    tokens: Vec<(Scope, String)>,
    other_project_token: String,
    revoked_token: String,
    emails: Vec<(Caller, &'static str)>,
    counter: std::sync::atomic::AtomicUsize,
}

impl World {
    async fn build() -> World {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up_admin("admin@example.com").await;
        let owner = app.other_user("owner@example.com").await;
        let project = app.new_project_as(&owner, "Matrix").await;
        let member = invite_and_join(&app, &owner, &project, "member@example.com").await;
        let stranger = app.other_user("stranger@example.com").await;
        let mut tokens = Vec::new();
        for scope in Scope::ALL {
            tokens.push((scope, token(&app, &owner, &project, &[scope]).await));
        }
        // Revoked by its own id (listing by creation time ties within a millisecond).
        let (revoked_token, revoked_id) = token_and_id(&app, &owner, &project, &Scope::ALL).await;
        let revoked =
            send(owner.delete(app.url(&format!("/api/projects/{project}/tokens/{revoked_id}"))))
                .await;
        assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
        let other_project = app.new_project("Elsewhere").await;
        let other_project_token = token(&app, &app.client, &other_project, &Scope::ALL).await;
        let conversation = app.conversation_id(&project).await;
        let answer = app.ask_ok(&project, &conversation, "Hello?").await;
        let message = answer["messageId"].as_str().unwrap().to_owned();
        // A conversation started on GPT keeps it after the project goes back to Claude.
        app.configure(
            &project,
            json!({"provider": "openai", "model": "gpt-4o-mini"}),
        )
        .await;
        let drawing = app.conversation_id(&project).await;
        app.configure(
            &project,
            json!({"provider": "claude", "model": "claude-3-5-sonnet-20241022"}),
        )
        .await;
        let experiment = start_experiment(
            &owner,
            &app.url(&format!("/api/projects/{project}/experiments")),
        )
        .await;
        let document = upload_document(
            &owner,
            &app.url(&format!("/api/projects/{project}/documents")),
        )
        .await;
        World {
            app,
            project,
            conversation,
            drawing,
            experiment,
            message,
            document,
            stranger,
            member,
            owner,
            tokens,
            other_project_token,
            revoked_token,
            emails: vec![
                (Caller::Stranger, "stranger@example.com"),
                (Caller::Member, "member@example.com"),
                (Caller::Owner, "owner@example.com"),
                (Caller::Admin, "admin@example.com"),
            ],
            counter: Default::default(),
        }
    }

    /// A request of `caller`: their cookies, or their bearer token.
    fn request(&self, caller: Caller, method: Method, path: &str) -> RequestBuilder {
        let url = self.app.url(path);
        let bearer = |token: &str| {
            new_client()
                .request(method.clone(), &url)
                .bearer_auth(token)
        };
        match caller {
            Caller::Anonymous => new_client().request(method, &url),
            Caller::Stranger => self.stranger.request(method, &url),
            Caller::Member => self.member.request(method, &url),
            Caller::Owner => self.owner.request(method, &url),
            Caller::Admin => self.app.client.request(method, &url),
            Caller::Token(scope) => {
                let (_, token) = self.tokens.iter().find(|(s, _)| *s == scope).unwrap();
                bearer(token)
            }
            Caller::OtherProjectToken => bearer(&self.other_project_token),
            Caller::RevokedToken => bearer(&self.revoked_token),
        }
    }

    fn fresh_email(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("fresh{n}@example.com")
    }

    /// A workspace invitation for `caller`'s own email (made by the admin).
    async fn invitation_for(&self, caller: Caller) -> String {
        let email = self
            .emails
            .iter()
            .find(|(c, _)| *c == caller)
            .map_or_else(|| self.fresh_email(), |(_, e)| (*e).to_owned());
        let created: Value = self
            .app
            .post("/api/invitations", json!({ "email": email }))
            .await
            .json()
            .await
            .unwrap();
        secret_of(&created)
    }

    /// A live token of the project, made to be revoked.
    async fn spare_token_id(&self) -> String {
        let response = post_with(
            &self.owner,
            &self
                .app
                .url(&format!("/api/projects/{}/tokens", self.project)),
            json!({ "name": "spare" }),
        )
        .await;
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// Stops the project's running experiment, if one runs, so another may start.
    async fn stop_running_experiment(&self) {
        let url = self
            .app
            .url(&format!("/api/projects/{}/experiments", self.project));
        let listed: Value = send(self.owner.get(&url)).await.json().await.unwrap();
        for experiment in listed["experiments"].as_array().into_iter().flatten() {
            if experiment["state"] == "running" {
                let id = experiment["id"].as_str().unwrap();
                let stopped = send(self.owner.post(format!("{url}/{id}/stop"))).await;
                assert_eq!(stopped.status(), StatusCode::OK);
            }
        }
    }

    /// A running experiment started just now, to be stopped or promoted.
    async fn fresh_experiment_id(&self) -> String {
        self.stop_running_experiment().await;
        start_experiment(
            &self.owner,
            &self
                .app
                .url(&format!("/api/projects/{}/experiments", self.project)),
        )
        .await
    }

    /// A document uploaded just now, to be deleted.
    async fn spare_document_id(&self) -> String {
        let url = self
            .app
            .url(&format!("/api/projects/{}/documents", self.project));
        upload_document(&self.owner, &url).await
    }

    /// A member of the project who joined just now, to be removed.
    async fn spare_member_id(&self) -> String {
        let email = self.fresh_email();
        invite_and_join(&self.app, &self.owner, &self.project, &email).await;
        let members: Value = send(
            self.owner.get(
                self.app
                    .url(&format!("/api/projects/{}/members", self.project)),
            ),
        )
        .await
        .json()
        .await
        .unwrap();
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email.as_str())
            .and_then(|m| m["userId"].as_str())
            .unwrap()
            .to_owned()
    }

    /// The concrete path and body of one endpoint's call by `caller`.
    async fn call_of(&self, endpoint: &Endpoint, caller: Caller) -> (String, Option<Value>) {
        let p = format!("/api/projects/{}", self.project);
        let c = format!("{p}/conversations/{}", self.conversation);
        let body = |value: Value| Some(value);
        match (endpoint.method, endpoint.path) {
            ("post", "/api/auth/signup") => (
                endpoint.path.into(),
                body(json!({ "email": self.fresh_email(), "password": PASSWORD })),
            ),
            ("post", "/api/auth/login") => (
                endpoint.path.into(),
                body(json!({ "email": "owner@example.com", "password": PASSWORD })),
            ),
            ("post", "/api/projects") => (endpoint.path.into(), body(json!({ "name": "Another" }))),
            ("patch", "/api/projects/{id}") => (p, body(json!({ "name": "Matrix" }))),
            ("post", "/api/projects/{id}/members") => (
                format!("{p}/members"),
                body(json!({ "email": self.fresh_email() })),
            ),
            ("delete", "/api/projects/{id}/members/{userId}") => (
                format!("{p}/members/{}", self.spare_member_id().await),
                None,
            ),
            ("post", "/api/invitations") => (
                endpoint.path.into(),
                body(json!({ "email": self.fresh_email() })),
            ),
            ("post", "/api/invitations/accept") => (
                endpoint.path.into(),
                body(json!({ "invitation": self.invitation_for(caller).await })),
            ),
            ("post", "/api/llm/providers/{id}/validate") => (
                "/api/llm/providers/claude/validate".into(),
                body(json!({ "apiKey": crate::helpers::GOOD_KEY })),
            ),
            ("get", "/api/llm/providers/{id}/models") => {
                ("/api/llm/providers/claude/models".into(), None)
            }
            ("put", "/api/admin/internal-rates/{model}") => (
                "/api/admin/internal-rates/llama-3.1-70b".into(),
                body(
                    json!({"effectiveDate": "2020-01-01", "perHourUsd": "2.50", "perMTokUsd": "0.10"}),
                ),
            ),
            ("post", "/api/llm/compare") => (
                endpoint.path.into(),
                body(
                    json!({"projectId": self.project, "prompt": "Hi", "models": ["claude-3-5-haiku-20241022"]}),
                ),
            ),
            ("patch", "/api/projects/{id}/llm-config") => (
                format!("{p}/llm-config"),
                body(json!({ "parameters": { "temperature": 0.5 } })),
            ),
            ("post", "/api/projects/{id}/llm-config/test") => {
                (format!("{p}/llm-config/test"), body(json!({})))
            }
            ("post", "/api/projects/{id}/conversations") => {
                (format!("{p}/conversations"), body(json!({})))
            }
            ("get", "/api/projects/{id}/conversations/{conversation_id}") => (c, None),
            ("get", "/api/projects/{id}/documents/{documentId}") => {
                (format!("{p}/documents/{}", self.document), None)
            }
            ("delete", "/api/projects/{id}/documents/{documentId}") => (
                format!("{p}/documents/{}", self.spare_document_id().await),
                None,
            ),
            ("post", "/api/projects/{id}/conversations/{conversation_id}/messages") => (
                format!("{c}/messages"),
                body(json!({ "content": "Again?" })),
            ),
            ("post", "/api/projects/{id}/experiments") => {
                self.stop_running_experiment().await;
                let body = json!({"name": "Matrix", "primaryMetric": "cost", "plannedAnswersPerArm": 50,
                    "arms": [{"provider": "claude", "model": "claude-3-5-haiku-20241022", "weight": 50},
                             {"provider": "openai", "model": "gpt-4o-mini", "weight": 50}]});
                (format!("{p}/experiments"), Some(body))
            }
            ("get", "/api/projects/{id}/experiments/{experiment_id}") => {
                (format!("{p}/experiments/{}", self.experiment), None)
            }
            ("patch", "/api/projects/{id}/experiments/{experiment_id}") => (
                format!("{p}/experiments/{}", self.fresh_experiment_id().await),
                body(json!({"weights": {"A": 30, "B": 70}})),
            ),
            ("post", "/api/projects/{id}/experiments/{experiment_id}/stop") => (
                format!("{p}/experiments/{}/stop", self.fresh_experiment_id().await),
                None,
            ),
            ("post", "/api/projects/{id}/experiments/{experiment_id}/promote") => (
                format!(
                    "{p}/experiments/{}/promote",
                    self.fresh_experiment_id().await
                ),
                body(json!({"arm": "A"})),
            ),
            ("post", "/api/projects/{id}/conversations/{conversation_id}/images") => (
                format!("{p}/conversations/{}/images", self.drawing),
                body(json!({ "prompt": "A lighthouse", "quality": "low" })),
            ),
            (
                "put",
                "/api/projects/{id}/conversations/{conversation_id}/messages/{message_id}/rating",
            ) => (
                format!("{c}/messages/{}/rating", self.message),
                body(json!({ "rating": "up" })),
            ),
            ("put", "/api/admin/private-hosts") => (
                endpoint.path.into(),
                body(json!({ "hosts": ["127.0.0.1", "localhost"] })),
            ),
            ("put", "/api/admin/managed-budget") => (
                endpoint.path.into(),
                body(json!({ "managedBudgetUsd": "25" })),
            ),
            ("put", "/api/projects/{id}/budget") => (
                format!("{p}/budget"),
                body(json!({ "limitUsd": "1000.00", "webhookUrl": null })),
            ),
            ("post", "/api/projects/{id}/notifications/read") => {
                (format!("{p}/notifications/read"), None)
            }
            ("post", "/v1/chat/completions") => (
                endpoint.path.into(),
                body(
                    json!({ "model": "cover/default", "messages": [{"role": "user", "content": "Hi"}] }),
                ),
            ),
            ("post", "/v1/embeddings") => (
                endpoint.path.into(),
                body(json!({ "model": "cover/default", "input": "Hi" })),
            ),
            ("post", "/v1/images/generations") => (
                endpoint.path.into(),
                body(json!({ "model": "gpt-image-1", "prompt": "A lighthouse", "quality": "low" })),
            ),
            ("post", "/v1/messages") => (
                endpoint.path.into(),
                body(
                    json!({ "model": "cover/default", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}] }),
                ),
            ),
            ("post", "/api/projects/{id}/tokens") => {
                (format!("{p}/tokens"), body(json!({ "name": "matrix" })))
            }
            ("delete", "/api/projects/{id}/tokens/{tokenId}") => {
                (format!("{p}/tokens/{}", self.spare_token_id().await), None)
            }
            (_, path) if !path.contains('{') || path.matches('{').count() == 1 => {
                let path = path.replace("{id}", &self.project);
                assert!(!path.contains('{'), "no sample for {path}");
                (path, None)
            }
            (method, path) => panic!("no sample call for {method} {path}"),
        }
    }
}

async fn send(request: RequestBuilder) -> reqwest::Response {
    let what = request
        .try_clone()
        .and_then(|r| r.build().ok())
        .map(|r| format!("{} {}", r.method(), r.url().path()))
        .unwrap_or_default();
    request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{what}: the server did not answer: {error}"))
}

/// A small Markdown document as an upload's multipart body.
fn sample_document() -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::text("# Hours\n\nOpen from 9 to 5.").file_name("hours.md");
    reqwest::multipart::Form::new().part("file", part)
}

/// Uploads [`sample_document`] with `client` to `url`; answers its id.
/// Starts a two-arm experiment at `url` (`…/experiments`); its id.
async fn start_experiment(client: &Client, url: &str) -> String {
    let body = json!({"name": "Matrix", "primaryMetric": "latency", "plannedAnswersPerArm": 100,
        "arms": [{"provider": "claude", "model": "claude-3-5-haiku-20241022", "weight": 50},
                 {"provider": "openai", "model": "gpt-4o-mini", "weight": 50}]});
    let response = post_with(client, url, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn upload_document(client: &Client, url: &str) -> String {
    let response = send(client.post(url).multipart(sample_document())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

fn secret_of(created: &Value) -> String {
    let link = created["link"].as_str().expect("an invitation link");
    link.split_once("invitation=").unwrap().1.to_owned()
}

async fn invite_and_join(app: &TestApp, owner: &Client, project: &str, email: &str) -> Client {
    let created: Value = post_with(
        owner,
        &app.url(&format!("/api/projects/{project}/members")),
        json!({ "email": email }),
    )
    .await
    .json()
    .await
    .unwrap();
    let client = new_client();
    let joined = post_with(
        &client,
        &app.url("/api/auth/signup"),
        json!({ "email": email, "password": PASSWORD, "invitation": secret_of(&created) }),
    )
    .await;
    assert_eq!(joined.status(), StatusCode::CREATED);
    client
}

async fn token(app: &TestApp, owner: &Client, project: &str, scopes: &[Scope]) -> String {
    token_and_id(app, owner, project, scopes).await.0
}

/// A new token's secret and its id.
async fn token_and_id(
    app: &TestApp,
    owner: &Client,
    project: &str,
    scopes: &[Scope],
) -> (String, String) {
    let response = post_with(
        owner,
        &app.url(&format!("/api/projects/{project}/tokens")),
        json!({ "name": "matrix", "scopes": scopes }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["scopes"], json!(scopes));
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_route_answers_each_kind_of_caller_as_its_auth_says() {
    let world = World::build().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    // The stranger and the member own no project until they create one (a
    // session route), so what needs an owner of some project goes first;
    // logging out ends the session the later calls need: it goes last.
    let mut endpoints: Vec<&Endpoint> = ENDPOINTS.iter().collect();
    endpoints.sort_by_key(|e| (e.path == "/api/auth/logout", e.auth != Auth::ProjectManager));
    for endpoint in endpoints {
        for caller in CALLERS {
            let expect = expected(endpoint.auth, caller);
            if endpoint.auth == Auth::Public && caller != Caller::Anonymous {
                continue;
            }
            let (path, body) = world.call_of(endpoint, caller).await;
            let method = Method::from_bytes(endpoint.method.to_uppercase().as_bytes()).unwrap();
            let mut request = world.request(caller, method, &path);
            if let Some(RequestBody::MultipartFile) = endpoint.request {
                request = request.multipart(sample_document());
            } else if let Some(body) = body {
                request = request.json(&body);
            }
            let response = send(request).await;
            let status = response.status().as_u16();
            let wanted = match expect {
                Expect::Allowed => endpoint.response.0,
                Expect::Refused(status) => status,
            };
            checked += 1;
            if status != wanted {
                let text = response.text().await.unwrap_or_default();
                failures.push(format!(
                    "{} {path} as {caller:?}: {status}, expected {wanted} ({expect:?}): {text}",
                    endpoint.method
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 250, "only {checked} calls were checked");
}

/// One server function: its path under `/sfn/`, who may call it, and its
/// arguments (a form, as a page posts it).
struct ServerFn {
    endpoint: &'static str,
    auth: Auth,
}

const fn people(scope: Scope) -> Auth {
    Auth::people(scope)
}

const SERVER_FNS: &[ServerFn] = &[
    ServerFn {
        endpoint: "admin/projects",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/internal-rates",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/internal-rates/set",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/managed-budget",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/managed-budget/set",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/private-hosts",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/private-hosts/set",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "admin/invite",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "auth/signup",
        auth: Auth::Public,
    },
    ServerFn {
        endpoint: "auth/login",
        auth: Auth::Public,
    },
    ServerFn {
        endpoint: "auth/me",
        auth: Auth::Public,
    },
    ServerFn {
        endpoint: "auth/signup-info",
        auth: Auth::Public,
    },
    ServerFn {
        endpoint: "auth/accept-invitation",
        auth: Auth::Session,
    },
    ServerFn {
        endpoint: "budgets/save",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "budgets/notifications",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "budgets/read",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "llm/catalog",
        auth: Auth::Public,
    },
    ServerFn {
        endpoint: "chat/list",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "chat/get",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "chat/new",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "chat/send",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "chat/image",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "experiments/list",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "experiments/create",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "experiments/stop",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "experiments/promote",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "chat/rate",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "knowledge/get",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "knowledge/delete",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "knowledge/document",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "compare/sample",
        auth: people(Scope::Chat),
    },
    ServerFn {
        endpoint: "costs/report",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "costs/workspace",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "performance/report",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "performance/workspace",
        auth: Auth::Admin,
    },
    ServerFn {
        endpoint: "projects/list",
        auth: Auth::Session,
    },
    ServerFn {
        endpoint: "projects/create",
        auth: Auth::Session,
    },
    ServerFn {
        endpoint: "projects/get",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "projects/rename",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "projects/members",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "projects/invite",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "projects/remove-member",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "settings/get",
        auth: people(Scope::Read),
    },
    ServerFn {
        endpoint: "settings/save",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "settings/test",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "settings/select-model",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "settings/tokens/create",
        auth: people(Scope::Manage),
    },
    ServerFn {
        endpoint: "settings/tokens/revoke",
        auth: people(Scope::Manage),
    },
    // Logging out ends the session the later calls need: it goes last.
    ServerFn {
        endpoint: "auth/logout",
        auth: Auth::Public,
    },
];

impl World {
    /// The form a server function is called with.
    async fn form_of(&self, endpoint: &str, caller: Caller) -> Vec<(String, String)> {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let p = self.project.as_str();
        let c = self.conversation.as_str();
        match endpoint {
            "admin/internal-rates/set" => pairs(&[
                ("model", "llama-3.1-70b"),
                ("effective_date", "2020-01-01"),
                ("per_hour_usd", "2.50"),
                ("per_m_tok_usd", "0.10"),
            ]),
            "admin/managed-budget/set" => pairs(&[("managed_budget_usd", "25"), ("cap_usd", "")]),
            "admin/private-hosts/set" => pairs(&[("hosts", "127.0.0.1")]),
            "admin/invite" => pairs(&[("email", &self.fresh_email())]),
            "auth/signup" => pairs(&[("email", &self.fresh_email()), ("password", PASSWORD)]),
            "auth/login" => pairs(&[("email", "owner@example.com"), ("password", PASSWORD)]),
            "auth/accept-invitation" => {
                pairs(&[("invitation", &self.invitation_for(caller).await)])
            }
            "budgets/save" => pairs(&[
                ("project_id", p),
                ("limit_usd", "1000"),
                ("webhook_url", ""),
            ]),
            "chat/get" => pairs(&[("project_id", p), ("conversation_id", c)]),
            "chat/send" => pairs(&[
                ("project_id", p),
                ("conversation_id", c),
                ("content", "Again?"),
            ]),
            "experiments/list" => pairs(&[("project_id", p)]),
            "experiments/create" => {
                self.stop_running_experiment().await;
                pairs(&[
                    ("project_id", p),
                    ("form[name]", "Matrix form"),
                    ("form[primary_metric]", "satisfaction"),
                    ("form[planned_answers_per_arm]", "50"),
                    ("form[model_a]", "claude-3-5-haiku-20241022"),
                    ("form[weight_a]", "50"),
                    ("form[model_b]", "gpt-4o-mini"),
                    ("form[weight_b]", "50"),
                ])
            }
            "experiments/stop" => pairs(&[
                ("project_id", p),
                ("experiment_id", &self.fresh_experiment_id().await),
            ]),
            "experiments/promote" => pairs(&[
                ("project_id", p),
                ("experiment_id", &self.fresh_experiment_id().await),
                ("arm", "A"),
            ]),
            "chat/image" => pairs(&[
                ("project_id", p),
                ("conversation_id", &self.drawing),
                ("content", "A lighthouse"),
                ("quality", "low"),
            ]),
            "chat/rate" => pairs(&[
                ("project_id", p),
                ("conversation_id", c),
                ("message_id", &self.message),
                ("rating", "up"),
            ]),
            "compare/sample" => pairs(&[
                ("request[projectId]", p),
                ("request[prompt]", "Hi"),
                ("request[models][0]", "claude-3-5-haiku-20241022"),
            ]),
            "costs/report" => pairs(&[("project_id", p), ("filter[granularity]", "day")]),
            "costs/workspace" => pairs(&[("filter[granularity]", "day")]),
            "performance/report" => pairs(&[("project_id", p), ("filter[granularity]", "day")]),
            "performance/workspace" => pairs(&[("filter[granularity]", "day")]),
            "projects/create" => pairs(&[("name", "Another"), ("use_case", "sales")]),
            "projects/get" => pairs(&[("id", p)]),
            "projects/rename" => pairs(&[("id", p), ("name", "Matrix")]),
            "projects/invite" => pairs(&[("project_id", p), ("email", &self.fresh_email())]),
            "projects/remove-member" => pairs(&[
                ("project_id", p),
                ("user_id", &self.spare_member_id().await),
            ]),
            "settings/save" => pairs(&[
                ("project_id", p),
                ("form[provider]", "claude"),
                ("form[model]", "claude-3-5-sonnet-20241022"),
                ("form[temperature]", "0.7"),
                ("form[max_tokens]", "1000"),
                ("form[top_p]", "1"),
                ("form[system_prompt]", ""),
                ("form[api_key_source]", "managed"),
                ("form[fallback_model]", "gpt-4o-mini"),
                ("form[retry_attempts]", "3"),
            ]),
            "settings/test" => pairs(&[("project_id", p), ("provider", "claude"), ("api_key", "")]),
            "settings/select-model" => {
                pairs(&[("project_id", p), ("model", "claude-3-5-sonnet-20241022")])
            }
            "settings/tokens/create" => pairs(&[
                ("project_id", p),
                ("name", "matrix"),
                ("scopes[0]", "chat"),
                ("scopes[1]", "manage"),
            ]),
            "settings/tokens/revoke" => pairs(&[
                ("project_id", p),
                ("token_id", &self.spare_token_id().await),
            ]),
            "knowledge/document" => pairs(&[("project_id", p), ("document_id", &self.document)]),
            "knowledge/delete" => pairs(&[
                ("project_id", p),
                ("document_id", &self.spare_document_id().await),
            ]),
            "admin/projects"
            | "admin/internal-rates"
            | "admin/managed-budget"
            | "admin/private-hosts"
            | "auth/me"
            | "auth/signup-info"
            | "llm/catalog"
            | "projects/list"
            | "auth/logout" => Vec::new(),
            _ => pairs(&[("project_id", p)]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_answers_each_kind_of_caller_as_its_auth_says() {
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/sfn/").to_owned())
        .collect();
    let listed: BTreeSet<String> = SERVER_FNS.iter().map(|f| f.endpoint.to_owned()).collect();
    assert_eq!(
        registered, listed,
        "the matrix lists exactly the registered server functions"
    );

    let world = World::build().await;
    let mut failures = Vec::new();
    for function in SERVER_FNS {
        for caller in CALLERS {
            if function.auth == Auth::Public && caller != Caller::Anonymous {
                continue;
            }
            let form = world.form_of(function.endpoint, caller).await;
            let path = format!("/sfn/{}", function.endpoint);
            let response = send(world.request(caller, Method::POST, &path).form(&form)).await;
            let status = response.status().as_u16();
            // A server function that succeeds answers 200, or redirects a
            // form post (303/302) to the page it leads to.
            let ok = match expected(function.auth, caller) {
                Expect::Allowed => status < 400,
                Expect::Refused(wanted) => status == wanted,
            };
            if !ok {
                let text = response.text().await.unwrap_or_default();
                failures.push(format!(
                    "{path} as {caller:?}: {status}, expected {:?}: {text}",
                    expected(function.auth, caller)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
