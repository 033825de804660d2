#pragma once

#include <cstdlib>
#include <string>

namespace sluice::test {

/// An environment variable set for the scope of a test, and unset at its end (the tests that
/// use it set variables nobody else sets: a key, a header value).
class scoped_env {
public:
    scoped_env(const char* name, const std::string& value)
        : name_(name) {
        ::setenv(name, value.c_str(), 1);
    }
    ~scoped_env() { ::unsetenv(name_); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* name_;
};

} // namespace sluice::test
