// How the connection pool reads answers that come in pieces: every read goes into one buffer
// of the pool's and is parsed at once, so a head or a chunk's size line cut by a read must be
// kept for the next one, and a body that keeps coming must not keep the others waiting.
#include "support/loopback.hpp"
#include "support/read_request.hpp"
#include "support/script_server.hpp"

#include <sluice/transport/connection_pool.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace pool_reads_test {

using namespace sluice;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// An answer as a server sends it: pieces with a pause before each but the first, or a body
// that never ends (`endless`: 64 KiB pieces after the others until the client goes).
struct answer_plan {
    std::vector<std::string> pieces;
    std::chrono::milliseconds pause{0};
    bool endless = false;
};

// A keep-alive server on 127.0.0.1 that answers the Nth request it receives (over all its
// connections, 0-based) as `plan(N)` says. Runs on its own thread for at most 30 s; stopped
// and joined at scope end.
class pieces_server {
public:
    using planner = std::function<answer_plan(int n)>;

    explicit pieces_server(planner p)
        : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0})
        , plan_(std::move(p)) {
        asio::co_spawn(ioc_, accept_loop(this), asio::detached);
        thread_ = std::thread([this] { ioc_.run_for(30s); });
    }
    ~pieces_server() {
        ioc_.stop();
        thread_.join();
    }
    pieces_server(const pieces_server&) = delete;
    pieces_server& operator=(const pieces_server&) = delete;

    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
    }

private:
    static asio::awaitable<void> accept_loop(pieces_server* self) {
        for (;;) {
            auto socket = co_await self->acceptor_.async_accept(asio::use_awaitable);
            asio::co_spawn(self->ioc_, serve(self, std::move(socket)), asio::detached);
        }
    }

    static asio::awaitable<void> serve(pieces_server* self, asio::ip::tcp::socket socket) {
        std::string in;
        asio::steady_timer pause(socket.get_executor());
        try {
            for (;;) {
                co_await test::read_request(socket, in);
                const answer_plan plan = self->plan_(self->next_++);
                for (std::size_t i = 0; i < plan.pieces.size(); ++i) {
                    if (i > 0 && plan.pause.count() > 0) {
                        pause.expires_after(plan.pause);
                        co_await pause.async_wait(asio::use_awaitable);
                    }
                    co_await asio::async_write(
                        socket, asio::buffer(plan.pieces[i]), asio::use_awaitable);
                }
                if (plan.endless) {
                    const std::string piece(64 * 1024, ' ');
                    for (;;) // until the client closes: the write fails and throws
                        co_await asio::async_write(
                            socket, asio::buffer(piece), asio::use_awaitable);
                }
            }
        } catch (const std::exception&) {
            // the client closed the connection
        }
    }

    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_;
    planner plan_;
    int next_ = 0;
    std::thread thread_;
};

// What an exchange through a fresh pool gave, in the order the answers completed.
struct finished {
    int index;
    http_response response;
};

// Sends `n` requests through one pool, `parallel` at a time, and returns their answers in the
// order they completed.
std::vector<finished>
exchange_all(const std::string& base_url, const pool_options& opts, int n, int parallel) {
    asio::io_context ioc;
    error_code ec;
    const endpoint ep = endpoint::parse(base_url, ec);
    REQUIRE_FALSE(ec);
    request_headers h;
    h.target = ep.target("/chat/completions");
    h.authorization = "Bearer sk-test";
    connection_pool pool(ioc.get_executor(), ep, h, opts, nullptr);
    std::vector<std::string> bodies;
    for (int i = 0; i < n; ++i)
        bodies.push_back(test::chat_body(i));
    std::vector<finished> out;
    int next = 0;
    std::function<void()> launch = [&] {
        const int i = next++;
        pool.async_exchange(bodies[static_cast<std::size_t>(i)], [&, i](http_response r) {
            out.push_back({i, std::move(r)});
            if (static_cast<int>(out.size()) == n)
                pool.close();
            else if (next < n)
                launch();
        });
    };
    for (int i = 0; i < std::min(parallel, n); ++i)
        launch();
    ioc.run_for(30s);
    return out;
}

// A chunked answer with a chunk extension, a trailer and the headers the pool keeps.
const std::string chunked_answer = "HTTP/1.1 200 OK\r\n"
                                   "Content-Type: application/json\r\n"
                                   "x-request-id: req-split\r\n"
                                   "x-ratelimit-remaining-requests: 41\r\n"
                                   "Transfer-Encoding: chunked\r\n"
                                   "\r\n"
                                   "1c\r\n"
                                   R"({"id":"c1","object":"chat.co)"
                                   "\r\n"
                                   "17;name=value\r\n"
                                   R"(mpletion","choices":[]})"
                                   "\r\n"
                                   "0\r\n"
                                   "x-trailer: yes\r\n"
                                   "\r\n";
const std::string chunked_body = R"({"id":"c1","object":"chat.completion","choices":[]})";

} // namespace

TEST_CASE("an answer cut by the network at any byte arrives whole") {
    // The answer to request k comes in two writes 3 ms apart, split after byte k: the head,
    // a chunk's size line or the last CRLF cut in two, each kept until the next read.
    const int n = static_cast<int>(chunked_answer.size()) - 1;
    pieces_server server([](int k) {
        const auto at = static_cast<std::size_t>(k) + 1;
        return answer_plan{{chunked_answer.substr(0, at), chunked_answer.substr(at)}, 3ms};
    });
    const auto done = exchange_all(server.base_url(), {}, n, 1);
    REQUIRE(static_cast<int>(done.size()) == n);
    for (const finished& f : done) {
        INFO("split after byte " << f.index + 1);
        REQUIRE_FALSE(f.response.ec);
        CHECK(f.response.status == 200);
        CHECK(f.response.body == chunked_body);
        CHECK(std::string_view(f.response.request_id) == "req-split");
        CHECK(std::string_view(f.response.remaining_requests) == "41");
    }
}

TEST_CASE("an answer that comes a byte at a time arrives whole, on a connection reused after") {
    pieces_server server([](int) {
        answer_plan plan;
        for (char c : chunked_answer)
            plan.pieces.emplace_back(1, c);
        plan.pause = 1ms;
        return plan;
    });
    const auto done = exchange_all(server.base_url(), {}, 3, 1);
    REQUIRE(done.size() == 3);
    for (const finished& f : done) {
        REQUIRE_FALSE(f.response.ec);
        CHECK(f.response.body == chunked_body);
    }
}

TEST_CASE("a body that keeps coming does not keep the other connections' answers waiting") {
    // The first request the server reads gets a body without a length that never ends
    // (a Content-Length over the limit would be refused at the head), read until
    // max_body_size (64 MiB, thousands of reads); the second, on another connection, gets its
    // answer 20 ms later. Read after read without a turn for the others, the first would hold
    // the loop until its limit.
    pieces_server server([](int k) {
        if (k == 0)
            return answer_plan{{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Connection: close\r\n\r\n"},
                               0ms,
                               true};
        return answer_plan{{std::string(), test::http_answer("200 OK", "", chunked_body)}, 20ms};
    });
    pool_options o;
    o.max_body_size = 64 * 1024 * 1024;
    const auto done = exchange_all(server.base_url(), o, 2, 2);
    REQUIRE(done.size() == 2);
    CHECK_FALSE(done[0].response.ec); // the small answer first
    CHECK(done[0].response.body == chunked_body);
    CHECK(done[1].response.ec == errc::body_too_large);
}

} // namespace pool_reads_test
