// Embedding sluice in a service: submit requests from a coroutine and read the results.
// Runs against the embedded mock server so that it works offline; point base_url at a real
// endpoint (and set api_key) to use it for real.
#include <sluice/dispatcher.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio.hpp>
#include <iostream>

namespace asio = boost::asio;

asio::awaitable<bool> ask(sluice::dispatcher& engine) {
    sluice::request req;
    req.custom_id = "greeting";
    req.body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]})";
    auto [ec, r] = co_await engine.async_complete(req, asio::as_tuple(asio::use_awaitable));
    if (ec)
        std::cout << "failed: " << r.message << '\n';
    else
        std::cout << r.completion.choices.at(0).content.value_or("") << " ("
                  << r.completion.usage->total_tokens << " tokens)\n";
    engine.stop();
    co_return !ec;
}

int main() {
    asio::io_context ioc;
    sluice::mock_options mock_opts;
    mock_opts.tls = true;
    sluice::mock_server mock(ioc.get_executor(), mock_opts);
    mock.start();

    sluice::dispatcher_options opts;
    opts.base_url = mock.base_url();          // e.g. "https://api.openai.com/v1"
    opts.tls.ca_pem = mock.certificate_pem(); // trust the mock's self-signed certificate
    opts.limits.rpm = 3500;
    opts.limits.tpm = 90000;
    sluice::dispatcher engine(ioc.get_executor(), opts);

    bool ok = false;
    asio::co_spawn(ioc, ask(engine), [&](std::exception_ptr, bool answered) {
        ok = answered;
        mock.stop();
    });
    ioc.run();
    return ok ? 0 : 1;
}
