//! The layout of a signed programmer command (`docs/protocol.md` §5.5):
//! its body, its signing domain and its bounds. Who may sign what is in
//! [`crate::command_auth`], which re-exports all of this.

use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::error::PayloadError;
use crate::prescription::SIGNATURE_LEN;

/// Domain-separation prefix of the signed message.
pub const COMMAND_SIGNING_DOMAIN: &[u8] = b"infusion-pump/command/v1\0";

/// Command body format this crate writes.
pub const COMMAND_FORMAT: u8 = 1;

/// Largest inner payload: the largest postcard payload of a command a
/// signer may sign (a `Refill`, at most 15 bytes).
pub const MAX_COMMAND_PAYLOAD_LEN: usize = 16;

/// Largest postcard body of a [`CommandBody`].
pub const MAX_COMMAND_BODY_LEN: usize = CommandBody::POSTCARD_MAX_SIZE;

/// Largest signed command: body and signature.
pub const MAX_SIGNED_COMMAND_LEN: usize = MAX_COMMAND_BODY_LEN + SIGNATURE_LEN;

/// Largest message a command signature covers.
pub const MAX_SIGNED_COMMAND_MESSAGE_LEN: usize =
    COMMAND_SIGNING_DOMAIN.len() + MAX_COMMAND_BODY_LEN;

/// What a command signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct CommandBody {
    /// Body format; [`COMMAND_FORMAT`].
    pub format: u8,
    /// The implant it is for.
    pub device_id: u32,
    /// Who signed it (`Signer::code` in [`crate::command_auth`]).
    pub signer: u8,
    /// Strictly increasing per signer and device; the pump refuses a counter
    /// at or below the last one it accepted from that signer. Hosts use the
    /// signing time in milliseconds, which needs no stored state.
    pub counter: u64,
    /// The command's message kind.
    pub kind: u16,
    /// The command's postcard payload, exactly as in a plain frame.
    pub payload: Vec<u8, MAX_COMMAND_PAYLOAD_LEN>,
}

/// A signed command split into its parts, borrowing the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedCommandParts<'a> {
    /// The postcard body.
    pub body: &'a [u8],
    /// The Ed25519 signature.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

/// Splits signed bytes into body and signature without interpreting them.
pub fn split_signed_command(signed: &[u8]) -> Result<SignedCommandParts<'_>, PayloadError> {
    let body_len = signed
        .len()
        .checked_sub(SIGNATURE_LEN)
        .filter(|len| *len > 0)
        .ok_or(PayloadError::Truncated)?;
    let (body, signature) = signed.split_at(body_len);
    let signature = signature.try_into().map_err(|_| PayloadError::Truncated)?;
    Ok(SignedCommandParts { body, signature })
}

/// Decodes a command body, refusing trailing bytes and unknown formats.
pub fn decode_command_body(body: &[u8]) -> Result<CommandBody, PayloadError> {
    let (decoded, rest): (CommandBody, _) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(PayloadError::TrailingBytes);
    }
    if decoded.format != COMMAND_FORMAT {
        return Err(PayloadError::Malformed);
    }
    Ok(decoded)
}

/// Encodes a command body into `buf`.
pub fn encode_command_body<'b>(
    body: &CommandBody,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], PayloadError> {
    Ok(postcard::to_slice(body, buf)?)
}

/// Writes the exact message a command signature covers (domain prefix, then
/// body) into `buf`, so signer and verifier cannot disagree on what was
/// signed.
pub fn signed_command_message<'b>(
    body: &[u8],
    buf: &'b mut [u8],
) -> Result<&'b [u8], PayloadError> {
    let len = COMMAND_SIGNING_DOMAIN.len() + body.len();
    let out = buf.get_mut(..len).ok_or(PayloadError::TooLarge)?;
    let (domain, rest) = out.split_at_mut(COMMAND_SIGNING_DOMAIN.len());
    domain.copy_from_slice(COMMAND_SIGNING_DOMAIN);
    rest.copy_from_slice(body);
    Ok(out)
}
