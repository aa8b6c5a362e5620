//! The gateway's blocking HTTP/1.1 client and the two annotated calls the
//! service makes through it.

use crate::error::DepError;
use resilience_runtime::api_call;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A captured payment.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Payment {
    pub payment_id: String,
    pub amount_cents: i64,
}

/// A blocking HTTP/1.1 client for the gateway. Blocking on purpose: it runs
/// on `payment_gateway`'s own thread pool. Its read side, [`status`], is
/// async, through a tower stack on `payment_lookup`.
///
/// [`status`]: GatewayClient::status
#[derive(Clone, Debug)]
pub struct GatewayClient {
    addr: SocketAddr,
    lookup: super::PaymentLookup,
}

impl GatewayClient {
    /// A client for a gateway at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        GatewayClient {
            addr,
            lookup: super::PaymentLookup::new(addr),
        }
    }

    /// What the gateway knows of the charge under `key` (`payment_lookup`).
    pub async fn status(&self, key: &str) -> Result<super::ChargeStatus, DepError> {
        self.lookup.status(key).await
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), DepError> {
        let io = |e: std::io::Error| {
            DepError::Failed(format!("payment gateway unreachable at {}: {e}", self.addr))
        };
        let mut stream =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(io)?;
        // A backstop: the call timeout returns the caller sooner, but the
        // worker thread must not hang for ever on a silent gateway.
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(io)?;
        let body = body.to_string();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(io)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(io)?;
        let status: u16 = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DepError::Failed("payment gateway sent a malformed response".into()))?;
        let payload = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
    }
}

/// Charges `amount_cents` once per `idempotency_key`. Deliberately not
/// `idempotent`: a payment is attempted once per order, whatever the
/// configuration says; a doubtful one is voided instead. A decline is the
/// customer's problem, not the gateway's: `record_if` keeps it away from the
/// breaker, so no client can open it by asking for too much.
#[api_call(
    dependency = "payment_gateway",
    operation = "process_payment",
    record_if = DepError::is_transient
)]
pub fn charge(
    client: GatewayClient,
    idempotency_key: String,
    amount_cents: i64,
) -> Result<Payment, DepError> {
    let (status, body) = client.post(
        "/charges",
        &json!({"idempotency_key": idempotency_key, "amount_cents": amount_cents}),
    )?;
    let message = || {
        body["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned()
    };
    match status {
        200 => Ok(Payment {
            payment_id: body["payment_id"].as_str().unwrap_or_default().to_owned(),
            amount_cents,
        }),
        402 | 409 | 422 => Err(DepError::Declined(message())),
        _ => Err(DepError::Failed(format!(
            "payment gateway answered {status}: {}",
            message()
        ))),
    }
}

/// Refunds or voids the charge of `idempotency_key`.
// A void is idempotent by its key: repeating it never refunds twice.
#[api_call(
    dependency = "payment_gateway",
    operation = "void_payment",
    idempotent,
    retry_if = DepError::is_transient
)]
pub fn void(client: GatewayClient, idempotency_key: String) -> Result<String, DepError> {
    let (status, body) = client.post(&format!("/charges/{idempotency_key}/void"), &json!({}))?;
    match status {
        200 => Ok(body["status"].as_str().unwrap_or("voided").to_owned()),
        _ => Err(DepError::Failed(format!(
            "payment gateway answered {status} to a void"
        ))),
    }
}
