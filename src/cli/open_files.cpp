#include "cli/open_files.hpp"

#include <sys/resource.h>

#include <iostream>

namespace sluice::cli {

namespace {

// RLIM_INFINITY compares above every count; the kernel's own ceiling (fs.nr_open) still
// applies, so a hard limit of "unlimited" is asked for no more than `want`.
bool set_soft_limit(rlimit& lim, rlim_t want) {
    lim.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

} // namespace

bool ensure_open_files(std::size_t needed, std::string_view command) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return true; // nothing known to check against: the connects will say
    const auto want = static_cast<rlim_t>(needed);
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= want)
        return true;
    const rlim_t soft = lim.rlim_cur;
    if ((lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= want) && set_soft_limit(lim, want))
        return true;
    std::cerr << command << ": " << needed
              << " open files are needed for these connections, but the limit is " << soft
              << " (hard limit ";
    if (lim.rlim_max == RLIM_INFINITY)
        std::cerr << "unlimited";
    else
        std::cerr << lim.rlim_max;
    std::cerr << "); raise it in the shell that starts sluice (ulimit -n " << needed
              << ", or the hard limit in /etc/security/limits.conf) or lower --concurrency\n";
    return false;
}

void raise_open_files_to_hard_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == lim.rlim_max)
        return;
    // An unlimited hard limit still has the kernel's ceiling: ask for a generous finite count.
    const rlim_t want = lim.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : lim.rlim_max;
    if (!set_soft_limit(lim, want) && lim.rlim_max == RLIM_INFINITY)
        set_soft_limit(lim, 65536);
}

} // namespace sluice::cli
