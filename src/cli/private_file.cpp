#include "cli/private_file.hpp"

#include "sink/atomic_file.hpp"

#include <fcntl.h>

#include <system_error>

namespace sluice::cli {

bool write_private_file(const std::string& path, std::string_view text) {
    detail::file_handle fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, detail::private_file_mode));
    if (fd.get() < 0)
        return false;
    int err = 0;
    detail::write_fully(fd.get(), text.data(), text.size(), err);
    if (err != 0)
        return false;
    try {
        fd.close(path); // a failed close can be a write the file system never stored
    } catch (const std::system_error&) {
        return false;
    }
    return true;
}

} // namespace sluice::cli
