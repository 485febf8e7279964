//! The sans-IO core: client bytes in, bytes for the HTTP/2 server out.

use bytes::BytesMut;
use loona_hpack::Decoder;

use super::frame::{self, flags, kind, FrameHeader, FRAME_HEADER_LEN, PREFACE};
use super::hpack;
use super::RewriteError;

/// The largest header block gathered (HEADERS plus CONTINUATIONs). Larger
/// ones are passed on untouched while inspecting, and refused while rewriting.
pub(crate) const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// The dynamic table size the client's encoder may use: HTTP/2's initial
/// SETTINGS_HEADER_TABLE_SIZE, which the store's server does not change.
const HEADER_TABLE_SIZE: usize = 4096;

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Matching the client connection preface.
    Preface,
    /// Forwarding frames unchanged until the first header block is complete.
    Inspect,
    /// Every header block is re-encoded with a scheme-less `:authority`.
    Rewrite,
    /// Everything is forwarded unchanged from here on.
    Passthrough,
}

/// A header block being gathered from HEADERS and CONTINUATION frames.
struct Block {
    stream_id: u32,
    end_stream: bool,
    /// The joined fragments.
    fragments: Vec<u8>,
}

/// Rewrites the `:authority` of a client's HTTP/2 requests, one connection's
/// client-to-server bytes at a time.
pub(crate) struct Rewriter {
    phase: Phase,
    /// Received bytes not yet forwarded: part of a frame header, or a header frame.
    pending: BytesMut,
    /// Payload bytes of the current non-header frame still to forward as they come.
    forward: usize,
    block: Option<Block>,
    /// While inspecting, the header frames taken out of `pending` but not yet
    /// forwarded, as received.
    held: Vec<u8>,
    /// The client's HPACK state; every header block goes through it, in order.
    decoder: Decoder<'static>,
}

impl Default for Rewriter {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        Rewriter {
            phase: Phase::Preface,
            pending: BytesMut::new(),
            forward: 0,
            block: None,
            held: Vec::new(),
            decoder,
        }
    }
}

impl Rewriter {
    /// True once the connection needs no more attention: its bytes can go
    /// to the server as they are.
    pub(crate) fn is_passthrough(&self) -> bool {
        self.phase == Phase::Passthrough
    }

    /// True when the connection's header blocks are being rewritten.
    #[cfg(test)]
    pub(crate) fn is_rewriting(&self) -> bool {
        self.phase == Phase::Rewrite
    }

    /// Takes bytes the client sent and appends to `out` what the server gets.
    /// A frame is held back only while it is a partial frame header or a
    /// header frame not yet complete.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.pending.is_empty() && self.phase == Phase::Passthrough {
            out.extend_from_slice(input);
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        loop {
            match self.phase {
                Phase::Passthrough => {
                    out.extend_from_slice(&self.pending);
                    self.pending.clear();
                    return Ok(());
                }
                Phase::Preface => {
                    let seen = self.pending.len().min(PREFACE.len());
                    if self.pending[..seen] != PREFACE[..seen] {
                        // Not HTTP/2 with prior knowledge: none of our business.
                        self.phase = Phase::Passthrough;
                        continue;
                    }
                    if seen < PREFACE.len() {
                        return Ok(());
                    }
                    out.extend_from_slice(&self.pending.split_to(PREFACE.len()));
                    self.phase = Phase::Inspect;
                }
                Phase::Inspect | Phase::Rewrite => {
                    if !self.step(out)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The connection ended: whatever is held back goes out as it is, for the
    /// server to judge.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        self.block = None;
        out.append(&mut self.held);
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        self.phase = Phase::Passthrough;
    }

    /// Handles the next frame or part of one; false when more input is needed.
    fn step(&mut self, out: &mut Vec<u8>) -> Result<bool, RewriteError> {
        if self.forward > 0 {
            let n = self.forward.min(self.pending.len());
            out.extend_from_slice(&self.pending.split_to(n));
            self.forward -= n;
            return Ok(!self.pending.is_empty());
        }
        let Some(header) = FrameHeader::parse(&self.pending) else {
            return Ok(false);
        };
        let is_header_frame = matches!(header.kind, kind::HEADERS | kind::CONTINUATION);
        let problem = if self.block.is_some() && header.kind != kind::CONTINUATION {
            Some(RewriteError::InterleavedFrame {
                kind: header.kind,
                stream_id: header.stream_id,
            })
        } else if is_header_frame && header.length > MAX_HEADER_BLOCK {
            Some(RewriteError::HeaderBlockTooLarge {
                stream_id: header.stream_id,
                limit: MAX_HEADER_BLOCK,
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            return self.give_up(problem, out).map(|()| true);
        }
        if !is_header_frame {
            out.extend_from_slice(&self.pending.split_to(FRAME_HEADER_LEN));
            self.forward = header.length;
            return Ok(!self.pending.is_empty());
        }
        let frame_len = FRAME_HEADER_LEN + header.length;
        if self.pending.len() < frame_len {
            return Ok(false);
        }
        let frame = self.pending.split_to(frame_len);
        if self.phase == Phase::Inspect {
            self.held.extend_from_slice(&frame);
        }
        match self.header_frame(&header, &frame, out) {
            Ok(()) => Ok(true),
            Err(problem) => self.give_up(problem, out).map(|()| true),
        }
    }

    /// While inspecting, anything unexpected means the connection is left
    /// alone (the server will answer a real protocol error itself); while
    /// rewriting, the connection cannot go on.
    fn give_up(&mut self, problem: RewriteError, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        if self.phase == Phase::Rewrite {
            return Err(problem);
        }
        tracing::debug!(%problem, "not inspecting this HTTP/2 connection further");
        self.finish(out);
        Ok(())
    }

    /// Takes one complete HEADERS or CONTINUATION frame.
    fn header_frame(
        &mut self,
        header: &FrameHeader,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        let payload = &frame[FRAME_HEADER_LEN..];
        match (header.kind, &mut self.block) {
            (kind::HEADERS, None) => {
                let fragment = frame::headers_fragment(header, payload)?;
                self.block = Some(Block {
                    stream_id: header.stream_id,
                    end_stream: header.flags & flags::END_STREAM != 0,
                    fragments: fragment.to_vec(),
                });
            }
            (kind::CONTINUATION, Some(block)) if block.stream_id == header.stream_id => {
                if block.fragments.len() + payload.len() > MAX_HEADER_BLOCK {
                    return Err(RewriteError::HeaderBlockTooLarge {
                        stream_id: header.stream_id,
                        limit: MAX_HEADER_BLOCK,
                    });
                }
                block.fragments.extend_from_slice(payload);
            }
            _ => {
                return Err(RewriteError::InterleavedFrame {
                    kind: header.kind,
                    stream_id: header.stream_id,
                })
            }
        }
        if header.flags & flags::END_HEADERS != 0 {
            if let Some(block) = self.block.take() {
                self.end_block(block, out)?;
            }
        }
        Ok(())
    }

    /// A header block is complete: decode it and forward it, rewritten or not.
    fn end_block(&mut self, block: Block, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let mut headers = Vec::new();
        let mut has_scheme = false;
        let decoded = self
            .decoder
            .decode_with_cb(&block.fragments, |name, value| {
                if &name[..] == b":authority" && hpack::authority_without_scheme(&value).is_some() {
                    has_scheme = true;
                }
                headers.push((name.into_owned(), value.into_owned()));
            });
        if let Err(err) = decoded {
            return Err(RewriteError::Hpack {
                stream_id: block.stream_id,
                reason: err.to_string(),
            });
        }
        if self.phase == Phase::Inspect && !has_scheme {
            // The usual case: a well-formed authority. From here on the
            // connection's bytes go to the server as they are.
            out.append(&mut self.held);
            self.phase = Phase::Passthrough;
            return Ok(());
        }
        if self.phase == Phase::Inspect {
            tracing::debug!(
                stream_id = block.stream_id,
                "rewriting this connection's ':authority: scheme://host:port' headers"
            );
        }
        self.phase = Phase::Rewrite;
        self.held.clear();
        let mut encoded = Vec::with_capacity(block.fragments.len() * 2);
        for (name, value) in &headers {
            let value = match &name[..] {
                b":authority" => hpack::authority_without_scheme(value).unwrap_or(value),
                _ => value,
            };
            hpack::encode_literal(name, value, &mut encoded);
        }
        frame::write_header_block(block.stream_id, block.end_stream, &encoded, out);
        Ok(())
    }
}
