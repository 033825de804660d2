#pragma once

#include "cli/batch_api_command.hpp"

#include "batch_api/batch_collect.hpp"
#include "batch_api/batch_state.hpp"

#include <sluice/batch_api/batch_client.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// The steps of a deferred job that the `sluice batch` subcommands share: each one done against
// the provider and recorded in the state file before the next.
namespace sluice::cli {

using detail::batch_part;
using detail::batch_state;

// The Batch API steps run one at a time on a loop of this thread.
class api_session {
public:
    explicit api_session(const dispatcher_options& opts)
        : client_(ioc_.get_executor(), opts) {}

    // Starts `op` with a handler and runs the loop until it completes.
    template <class T, class Op>
    std::pair<error_code, T> run(Op op) {
        std::optional<std::pair<error_code, T>> r;
        op(client_, [&r](error_code ec, T v) { r.emplace(ec, std::move(v)); });
        while (!r)
            ioc_.run_one();
        return std::move(*r);
    }

    // Waits `d` while the loop keeps serving the pool (idle connections, timers).
    void pause(std::chrono::milliseconds d) { ioc_.run_for(d); }

private:
    boost::asio::io_context ioc_;
    batch_client client_;
};

// Thrown with what a failed step said; the command reports it and exits.
struct step_failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The step's result, or step_failed naming the step and why.
template <class T>
T checked(std::pair<error_code, T> r, const std::string& step) {
    if (r.first)
        throw step_failed(
            step + ": " + r.first.message() +
            (r.second.error_message.empty() ? "" : " (" + r.second.error_message + ")"));
    return std::move(r.second);
}

// The name of a part's upload at the provider: the job and the part, so that an upload whose
// answer was lost is found again by it.
std::string upload_name(const batch_state& s, const batch_part& p);

// completed, failed, expired, cancelled.
bool is_final(const std::string& status);

// What a retrieval said of a part's batch.
void record_poll(batch_part& p, const batch_object& b);

// Uploads and creates every part that has no batch yet, saving the state after each step; a
// step marked pending (a process killed in it) is first looked for at the provider.
void submit_parts(api_session& api, batch_state& s, const std::string& state_path, bool quiet);

// Polls every part not yet final and saves the state; true when all are final.
bool poll_parts(api_session& api, batch_state& s, const std::string& state_path);

// Downloads a final part's files and merges them into `out`; its lines not run go to its
// unfinished file. Saves the state once the part is merged.
void collect_part(api_session& api,
                  batch_state& s,
                  batch_part& p,
                  detail::merged_output& out,
                  const std::string& state_path,
                  bool quiet);

// Each part's line and the overall line, on stdout.
void print_status(const batch_state& s);

// Parts that left lines undone that nothing has taken on yet; of those, the ones --resubmit
// may put in new batches.
std::vector<batch_part*> unfinished_parts(batch_state& s);
std::vector<batch_part*> resubmittable_parts(batch_state& s);

// --resubmit: the unfinished lines of expired or cancelled parts become new parts, submitted.
void resubmit(api_session& api,
              batch_state& s,
              const batch_api_options& o,
              const std::string& state_path);

// --finish-live: the unfinished lines through `sluice run` into the same output.
int finish_live(batch_state& s, const batch_api_options& o, const std::string& state_path);

} // namespace sluice::cli
