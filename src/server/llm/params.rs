//! Parameter validation on the request path: the shared rules of
//! [`crate::model::parameters`], reported as an [`LlmError`] before any network call.

use super::error::{ErrorKind, LlmError};
use super::types::{ModelLimits, Parameters};
use super::ProviderId;
pub use crate::model::parameters::{validate_parameters, ParamError};

/// The same check as [`validate_parameters`], as the first [`LlmError`] (request path).
pub fn check_parameters(
    provider: ProviderId,
    params: &Parameters,
    limits: Option<&ModelLimits>,
) -> Result<(), LlmError> {
    validate_parameters(provider, params, limits).map_err(|errors| {
        let first = errors.into_iter().next().unwrap_or(ParamError {
            field: String::new(),
            allowed: String::new(),
            message: String::new(),
        });
        LlmError::new(
            provider,
            ErrorKind::InvalidParameter {
                param: first.field,
                allowed: first.allowed,
            },
            first.message,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_path_reports_the_first_invalid_parameter_as_an_llm_error() {
        let p = Parameters {
            top_p: Some(-0.1),
            ..Parameters::default()
        };
        let err = check_parameters(ProviderId::Gemini, &p, None).expect_err("invalid");
        assert_eq!(
            err.kind,
            ErrorKind::InvalidParameter {
                param: "topP".into(),
                allowed: "0–1".into()
            }
        );
    }
}
