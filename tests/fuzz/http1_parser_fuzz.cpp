// sluice's HTTP/1.1 response parser (src/transport/http1_parser.hpp) against Beast's
// basic_parser on arbitrary bytes, response after response as a connection brings them: read
// in one piece, and cut at two points taken from the data, ours must give Beast's verdict (the
// same error, or the one Beast itself gives on the same pieces) and, on success, the same
// statuses, fields, bodies, keep-alive and bytes used per response (tests/support/http1_diff.hpp).
#include "fuzz_support.hpp"
#include "support/http1_diff.hpp"

#include <algorithm>
#include <cctype>
#include <string>

using namespace sluice::test::http1_diff;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in = sluice::fuzz::as_view(data, size);
    // Small limits sometimes, so that both limits are reached by inputs of fuzzer size.
    const std::size_t h = sluice::fuzz::split_point(in, 7);
    limits lim;
    if (h & 1)
        lim.body = h % 300;
    // Beast does not bound chunk lines and trailers, ours does: a small header limit only
    // where no chunked body can come.
    const auto chunked = [&] {
        std::string lower(in);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
            return static_cast<char>(std::tolower(c));
        });
        return lower.find("chunked") != std::string::npos;
    };
    if ((h & 2) && !chunked())
        lim.header = static_cast<std::uint32_t>(64 + h % 512);

    const outcome whole = read_beasts({in}, lim);
    std::size_t a = sluice::fuzz::split_point(in, 1);
    std::size_t b = sluice::fuzz::split_point(in, 2);
    if (a > b)
        std::swap(a, b);
    const std::vector<std::string_view> pieces = cut(in, {a, b});
    for (const auto& read : {std::vector<std::string_view>{in}, pieces}) {
        const outcome mine = read_ours(read, lim);
        if (!agrees(mine, whole, read, lim)) {
            std::fprintf(
                stderr,
                "cut at %zu and %zu (%zu pieces)\nBeast whole: %s\nBeast cut: %s\nours: %s\n",
                a,
                b,
                read.size(),
                describe(whole).c_str(),
                describe(read_beasts(read, lim)).c_str(),
                describe(mine).c_str());
        }
        SLUICE_FUZZ_CHECK(agrees(mine, whole, read, lim));
    }
    return 0;
}
