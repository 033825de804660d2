#pragma once

#include <sluice/mock/mock_server.hpp>

#include "mock/mock_answer.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace sluice::detail {

// What the mock does with one request, decided without I/O so that it can be reasoned about
// (and tested) apart from the sockets.
struct mock_reply {
    enum class action {
        respond,  // send status, headers and body
        reset,    // reset the connection before any byte
        truncate, // send the headers and half the body, then close
        stream,   // send the headers (chunked), then `stream`'s pieces, each as one chunk when
                  // due, then end it as `stream.end` says
    };
    action what = action::respond;
    unsigned status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;                   // empty for a stream
    stream_schedule stream;             // for action::stream; its pieces' times include `delay`
    bool close = false;                 // Connection: close after this response
    std::chrono::microseconds delay{0}; // from the request to the response head
};

// Counters, kept by the behaviour under the server's lock.
using mock_counters = mock_stats;

} // namespace sluice::detail
