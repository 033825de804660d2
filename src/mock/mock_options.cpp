#include <sluice/mock/mock_server.hpp>

#include <stdexcept>
#include <string>

namespace sluice {

namespace {

void check_probability(double p, const char* field) {
    if (!(p >= 0 && p <= 1)) // NaN fails too
        throw std::invalid_argument(std::string("mock_options: ") + field +
                                    " must be a probability between 0 and 1");
}

template <class Duration>
void check_duration(Duration d, const char* field) {
    if (d.count() < 0)
        throw std::invalid_argument(std::string("mock_options: ") + field +
                                    " must not be negative");
}

} // namespace

void mock_options::validate() const {
    check_probability(faults.http_500, "faults.http_500");
    check_probability(faults.http_503, "faults.http_503");
    check_probability(faults.reset, "faults.reset");
    check_probability(faults.truncated, "faults.truncated");
    check_probability(faults.malformed, "faults.malformed");
    check_probability(faults.insufficient_quota, "faults.insufficient_quota");
    check_probability(faults.slow, "faults.slow");
    check_probability(faults.stream_error, "faults.stream_error");
    check_probability(faults.stream_cut, "faults.stream_cut");
    check_duration(faults.slow_delay, "faults.slow_delay");
    check_duration(latency, "latency");
    check_duration(first_token, "first_token");
    check_duration(chunk_interval, "chunk_interval");
    check_duration(batch.processing_time, "batch.processing_time");
    check_duration(batch.api_delay, "batch.api_delay");
    check_duration(batch.download_piece_interval, "batch.download_piece_interval");
    if (tokens_per_chunk == 0)
        throw std::invalid_argument("mock_options: tokens_per_chunk must be at least 1");
}

} // namespace sluice
