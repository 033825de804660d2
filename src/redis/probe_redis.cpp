#include <sluice/redis/shared_budget.hpp>

#include "redis/redis_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

// probe_redis, apart from the options and URL code of shared_budget.cpp: the one coroutine of
// that header, kept out of the sources the config fuzz target compiles (clang 14 cannot
// assemble these coroutines under its sanitizers).
namespace sluice {

error_code probe_redis(const shared_budget_options& opts, std::string& why) {
    namespace asio = boost::asio;
    error_code ec;
    const redis_url url = redis_url::parse(opts.url, ec);
    if (ec) {
        why = "not a redis:// URL: " + redact_redis_url(opts.url);
        return ec;
    }
    asio::io_context ioc;
    std::optional<asio::ssl::context> tls;
    if (url.tls)
        tls.emplace(make_client_tls_context(opts.tls));
    detail::redis_connection conn(ioc.get_executor(), url, opts.timeout, tls ? &*tls : nullptr);
    error_code result = make_error_code(std::errc::timed_out);
    why = "no answer from " + url.redacted();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            if (error_code c = co_await conn.connect(why)) {
                result = c;
                co_return;
            }
            detail::resp_value reply;
            std::vector<std::string> ping;
            ping.push_back("PING");
            if (error_code c = co_await conn.exec(ping, reply)) {
                why = "PING " + url.redacted() + ": " + c.message();
                result = c;
                co_return;
            }
            if (reply.is_error()) {
                why = "PING " + url.redacted() + ": " + reply.text;
                result = make_error_code(std::errc::permission_denied);
                co_return;
            }
            why.clear();
            result = {};
        },
        asio::detached);
    ioc.run_for(opts.timeout * 4 + std::chrono::seconds(1));
    // Not done in time: closing ends the pending step, and the coroutine with it, before
    // `conn` goes away.
    conn.close();
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(200));
    return result;
}

} // namespace sluice
