//! What each method needs of a credential, and the check in front of every call (issue 15):
//! an agent's call to a method its scopes do not allow gets 1017 before the method runs; a
//! call on a WebSocket whose credential expired or was revoked since the upgrade gets 1019.
//! The admin token passes. A method the table does not name needs `admin` (fail closed).

use farthing_credential::Scope;
use jsonrpsee::MethodResponse;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use std::sync::Arc;

use crate::ApiError;
use crate::principal::{Authority, Principal};

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any valid credential.
    Any,
    /// A credential whose scopes include this one.
    Scope(Scope),
}

/// Every method (name after `farthing_`) and what it needs; a test checks that it names
/// exactly the API's methods.
pub const SCOPES: &[(&str, Needs)] = &[
    ("info", Needs::Any),
    ("discover", Needs::Any),
    ("whoami", Needs::Any),
    ("listChannels", Needs::Scope(Scope::Read)),
    ("getChannel", Needs::Scope(Scope::Read)),
    ("waitChannel", Needs::Scope(Scope::Read)),
    ("listPeers", Needs::Scope(Scope::Read)),
    ("balances", Needs::Scope(Scope::Read)),
    ("listPayments", Needs::Scope(Scope::Read)),
    ("subscribePayments", Needs::Scope(Scope::Read)),
    ("unsubscribePayments", Needs::Scope(Scope::Read)),
    ("subscribeChannels", Needs::Scope(Scope::Read)),
    ("unsubscribeChannels", Needs::Scope(Scope::Read)),
    ("pay", Needs::Scope(Scope::Pay)),
    ("fetch", Needs::Scope(Scope::Fetch)),
    ("openChannel", Needs::Scope(Scope::Channel)),
    ("topUp", Needs::Scope(Scope::Channel)),
    ("withdraw", Needs::Scope(Scope::Channel)),
    ("closeChannel", Needs::Scope(Scope::Channel)),
    ("settle", Needs::Scope(Scope::Channel)),
    ("claim", Needs::Scope(Scope::Channel)),
    ("connectPeer", Needs::Scope(Scope::Channel)),
    ("disconnectPeer", Needs::Scope(Scope::Channel)),
    ("redeem", Needs::Scope(Scope::Sell)),
    ("collectAuthorization", Needs::Scope(Scope::Sell)),
    ("refundCollection", Needs::Scope(Scope::Sell)),
    ("createCredential", Needs::Scope(Scope::Admin)),
    ("listCredentials", Needs::Scope(Scope::Admin)),
    ("showCredential", Needs::Scope(Scope::Admin)),
    ("revokeCredential", Needs::Scope(Scope::Admin)),
];

/// What the method called `wire` (`farthing_pay`, `rpc.discover`, …) needs.
pub fn needs(wire: &str) -> Needs {
    let short = match wire.strip_prefix("farthing_") {
        Some(short) => short,
        None if wire == "rpc.discover" => "discover",
        None => return Needs::Scope(Scope::Admin),
    };
    SCOPES
        .iter()
        .find(|(name, _)| *name == short)
        .map_or(Needs::Scope(Scope::Admin), |(_, needs)| *needs)
}

/// Whether the caller may call `method` now: `Err` is the error to answer instead.
fn admit(request: &Request<'_>, authority: Option<&dyn Authority>) -> Result<(), ErrorObjectOwned> {
    let agent = match request.extensions().get::<Principal>() {
        Some(Principal::Admin) => return Ok(()),
        Some(Principal::Agent(agent)) => agent,
        // The auth layer puts a principal on every request it lets through.
        None => {
            return Err(ApiError::CredentialInvalid {
                reason: "missing".into(),
                message: "the request carries no checked credential".into(),
            }
            .into());
        }
    };
    if let Some(authority) = authority
        && let Err(denied) = authority.recheck(agent)
    {
        authority.refused(agent, denied.reason());
        return Err(ApiError::CredentialInvalid {
            reason: denied.reason().into(),
            message: denied.to_string(),
        }
        .into());
    }
    match needs(&request.method) {
        Needs::Any => Ok(()),
        Needs::Scope(scope) => match &agent.limits().scopes {
            Some(scopes) if !scopes.contains(&scope) => {
                if let Some(authority) = authority {
                    authority.refused(agent, "scope");
                }
                Err(ApiError::ScopeDenied {
                    method: request.method.to_string(),
                    scope: scope.as_str(),
                }
                .into())
            }
            _ => Ok(()),
        },
    }
}

/// The layer that puts [`CheckScope`] in front of the methods.
#[derive(Clone, Default)]
pub(crate) struct ScopeLayer {
    authority: Option<Arc<dyn Authority>>,
}

impl ScopeLayer {
    /// Recheck agents with `authority` (expiry and revocation) on each call.
    pub(crate) fn new(authority: Option<Arc<dyn Authority>>) -> Self {
        Self { authority }
    }
}

impl<S> tower::Layer<S> for ScopeLayer {
    type Service = CheckScope<S>;

    fn layer(&self, service: S) -> Self::Service {
        CheckScope {
            service,
            authority: self.authority.clone(),
        }
    }
}

/// Refuses calls the caller's credential does not allow.
#[derive(Clone)]
pub(crate) struct CheckScope<S> {
    service: S,
    authority: Option<Arc<dyn Authority>>,
}

impl<S> RpcServiceT for CheckScope<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse, BatchResponse = MethodResponse>
        + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let admitted = admit(&request, self.authority.as_deref());
        let service = self.service.clone();
        async move {
            match admitted {
                Ok(()) => service.call(request).await,
                Err(error) => MethodResponse::error(request.id, error),
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Each call of a batch is checked on its own.
        for entry in batch.iter_mut() {
            let Ok(BatchEntry::Call(request)) = entry else {
                continue;
            };
            if let Err(error) = admit(request, self.authority.as_deref()) {
                *entry = Err(BatchEntryErr::new(request.id.clone().into_owned(), error));
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_the_api_has_its_scope_and_no_other_is_named() {
        let mut table: Vec<&str> = SCOPES.iter().map(|(name, _)| *name).collect();
        table.sort_unstable();
        let mut wire: Vec<String> = crate::discover::wire_names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("farthing_").map(str::to_owned))
            .collect();
        wire.sort_unstable();
        assert_eq!(table, wire);
        assert_eq!(needs("farthing_pay"), Needs::Scope(Scope::Pay));
        assert_eq!(needs("rpc.discover"), Needs::Any);
        assert_eq!(needs("farthing_nope"), Needs::Scope(Scope::Admin));
        assert_eq!(needs("other_thing"), Needs::Scope(Scope::Admin));
    }
}
