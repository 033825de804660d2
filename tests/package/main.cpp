// Links the installed sluice::sluice and exercises it: a dispatcher against a closed port
// must deliver its one request as a connection failure.
#include <sluice/sluice.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
    boost::asio::io_context ioc;
    sluice::dispatcher_options opts;
    opts.base_url = "http://127.0.0.1:9/v1";
    opts.retry.max_attempts = 1;
    sluice::dispatcher engine(ioc.get_executor(), opts);
    sluice::request req;
    req.custom_id = "x";
    req.body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
    bool failed_as_expected = false;
    engine.async_complete(req, [&](sluice::error_code ec, sluice::result r) {
        failed_as_expected = ec && r.attempts == 1 && r.custom_id == "x";
        engine.stop();
    });
    ioc.run();
    std::cout << (failed_as_expected ? "ok" : "unexpected") << '\n';
    return failed_as_expected ? 0 : 1;
}
