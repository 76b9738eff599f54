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
}

/// The hex SHA-256 of a token, as written in `server.auth.tokens_sha256`.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// Lets every request through.
    pub fn none() -> Auth {
        Auth { hashes: None }
    }

    pub fn from_config(config: &ServerConfig) -> Auth {
        Auth {
            hashes: config
                .auth
                .as_ref()
                .map(|a| Arc::new(a.tokens_sha256.iter().map(|h| h.to_ascii_lowercase()).collect())),
        }
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(hashes) = &self.hashes else { return Ok(request) };
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing bearer token (authorization: Bearer <token>)"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?;
        if !hashes.contains(&hash_token(token.trim())) {
            return Err(Status::unauthenticated("unknown bearer token"));
        }
        Ok(request)
    }
}
