#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace sluice::test {

/// The permission bits of the file at `path` (0600 for rw-------); throws when it is missing.
inline mode_t file_mode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw std::system_error(errno, std::generic_category(), "stat " + path);
    return st.st_mode & 0777;
}

} // namespace sluice::test
