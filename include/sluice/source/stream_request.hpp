#pragma once

#include <memory>
#include <string>

namespace sluice {

/// Whether a chat-completion body asks for a streamed answer (`"stream": true` at its top
/// level). When it does and says nothing of usage, `stream_options.include_usage: true` is
/// added (a member of its own, or a member of the `stream_options` object it has), so that the
/// last event carries `usage` and the limiter settles from the server's count rather than the
/// estimate; an explicit `include_usage: false` is left as written. This is the one field the
/// engine writes into a body. A body that is not a JSON object, or that does not stream, is
/// left alone.
///
/// Cost: a body in which the text `"stream"` does not occur is not parsed at all.
bool prepare_stream_request(std::string& body);

/// `prepare_stream_request` for a stream of bodies: it keeps one simdjson parser and one
/// padded buffer, grown to the largest body seen, instead of allocating both per request (the
/// engine prepares every request it accepts). Not thread-safe: one per thread or loop.
class stream_request_preparer {
public:
    stream_request_preparer();
    ~stream_request_preparer();
    stream_request_preparer(stream_request_preparer&&) noexcept;
    stream_request_preparer& operator=(stream_request_preparer&&) noexcept;

    /// As `prepare_stream_request(body)`.
    bool operator()(std::string& body);

private:
    struct state; // the parser and the buffer: simdjson stays out of this header
    std::unique_ptr<state> state_;
};

} // namespace sluice
