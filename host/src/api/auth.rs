//! Bearer-token authentication. Tokens are configured as SHA-256 hashes
//! (hex), so the config file holds no secret.

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::config::ServerConfig;

/// The accepted token hashes; `None` = auth off.
#[derive(Clone)]
pub struct Auth {
    hashes: Option<Arc<HashSet<String>>>,
    operators: Arc<HashSet<String>>,
}

/// Who made a request, as its handler sees it (a request extension).
#[derive(Debug, Clone)]
pub struct Caller {
    /// May change what guests may reach (auth off: everyone may).
    pub operator: bool,
    /// The first 8 hex digits of the token's hash, to record who deployed.
    pub token: Option<String>,
}

impl Caller {
    pub fn of<T>(request: &Request<T>) -> Caller {
        request.extensions().get::<Caller>().cloned().unwrap_or(Caller { operator: true, token: None })
    }
}

/// The hex SHA-256 of a token, as written in `server.auth.tokens_sha256`.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// Lets every request through.
    pub fn none() -> Auth {
        Auth { hashes: None, operators: Arc::default() }
    }

    pub fn from_config(config: &ServerConfig) -> Auth {
        let lower = |hs: &[String]| hs.iter().map(|h| h.to_ascii_lowercase()).collect::<HashSet<_>>();
        let operators = config.auth.as_ref().map(|a| lower(&a.operator_tokens_sha256)).unwrap_or_default();
        Auth {
            hashes: config.auth.as_ref().map(|a| Arc::new(&lower(&a.tokens_sha256) | &operators)),
            operators: Arc::new(operators),
        }
    }
}

impl Auth {
    /// Who sends a request with this `authorization` header value, or why
    /// it is refused (gRPC and HTTP alike).
    pub fn check(&self, header: Option<&str>) -> Result<Caller, Status> {
        let Some(hashes) = &self.hashes else { return Ok(Caller { operator: true, token: None }) };
        let header =
            header.ok_or_else(|| Status::unauthenticated("missing bearer token (authorization: Bearer <token>)"))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?;
        let hash = hash_token(token.trim());
        if !hashes.contains(&hash) {
            return Err(Status::unauthenticated("unknown bearer token"));
        }
        Ok(Caller { operator: self.operators.contains(&hash), token: Some(hash[..8].to_string()) })
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").map(|h| h.to_str().unwrap_or(""));
        let caller = self.check(header)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}
