// The SSE framer (src/parse/sse_parser.cpp) on arbitrary bytes: the events, the failure and
// the retry value must not depend on how the stream was cut into reads. The input is fed
// whole, in two reads split at a point taken from the data, and (when short) one byte per
// read, each read from its own heap copy freed after it, so a view kept into an earlier read
// is a use after free.
#include "fuzz_support.hpp"
#include "unit/parse/sse_feed.hpp"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = fuzz::as_view(data, size);
    sse_parser_options opts;
    // Sometimes a small event limit, so that the refusal of a long event is split too.
    if (!in.empty() && (static_cast<unsigned char>(in[0]) & 3) == 0)
        opts.max_event_bytes = 1 + fuzz::split_point(in, 7) % 256;

    const test::feed_result whole = test::feed_whole(in, opts);
    const test::feed_result split = test::feed_split(in, fuzz::split_point(in), opts);
    SLUICE_FUZZ_CHECK(whole == split);
    if (in.size() <= 2048) {
        const test::feed_result bytewise = test::feed_bytewise(in, opts);
        SLUICE_FUZZ_CHECK(whole == bytewise);
    }
    for (const test::recorded_event& e : whole.events) {
        SLUICE_FUZZ_CHECK(e.data.size() <= opts.max_event_bytes);
        SLUICE_FUZZ_CHECK(!e.type.empty());
    }
    return 0;
}
