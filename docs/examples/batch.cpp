// Running a batch job from a service, as `sluice run` does: a Batch API JSONL file in, one
// output record per line, resumable (run it twice: the second run sends nothing). Runs against
// the embedded mock server so that it works offline.
#include <sluice/batch/batch_run.hpp>
#include <sluice/mock/mock_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

int main() {
    // The mock on a thread of its own, as a remote server would be.
    boost::asio::io_context server_loop;
    sluice::mock_options mock_opts;
    mock_opts.tls = true;
    sluice::mock_server mock(server_loop.get_executor(), mock_opts);
    mock.start();
    std::thread server([&] { server_loop.run(); });

    const std::string input = "example-batch-in.jsonl", output = "example-batch-out.jsonl";
    std::remove(output.c_str());
    {
        std::ofstream in(input);
        for (int i = 0; i < 100; ++i)
            in << R"({"custom_id":"q)" << i << R"(","method":"POST","url":"/v1/chat/completions",)"
               << R"("body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi )" << i
               << R"("}]}})" << '\n';
    }

    std::uint64_t sent[2] = {0, 0};
    for (int pass = 0; pass < 2; ++pass) {
        sluice::batch_options opts;
        opts.engine.base_url = mock.base_url();
        opts.engine.tls.ca_pem = mock.certificate_pem();
        opts.engine.limits.rpm = 30'000;
        boost::asio::io_context loop;
        sluice::batch_files files;
        files.input = input;
        files.output = output; // also the journal: the second pass resumes it
        sluice::batch_run job(loop, files, opts);
        job.start([] {});
        loop.run();
        job.sync();
        const sluice::batch_report r = job.report();
        std::cout << "pass " << pass + 1 << ": " << r.lines << " lines, " << r.stats.succeeded
                  << " succeeded, " << r.skipped << " already done\n";
        sent[pass] = r.stats.submitted;
    }
    boost::asio::post(server_loop, [&] { mock.stop(); }); // on the mock's own loop
    server.join();

    std::ifstream out(output);
    int records = 0;
    for (std::string line; std::getline(out, line);)
        ++records;
    return records == 100 && sent[0] == 100 && sent[1] == 0 ? 0 : 1;
}
