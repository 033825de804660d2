#include "source/id_scan.hpp"

namespace sluice::detail {
namespace {

// Walks the text of one line; every read is bounds-checked, the line may end anywhere.
class scanner {
public:
    explicit scanner(std::string_view line) noexcept
        : p_(line.data())
        , end_(line.data() + line.size()) {}

    id_scan run() noexcept {
        skip_blanks();
        if (!take('{'))
            return {};
        skip_blanks();
        if (take('}'))
            return {id_scan_kind::absent, {}};
        for (;;) {
            std::string_view key;
            if (!plain_string(key))
                return {};
            skip_blanks();
            if (!take(':'))
                return {};
            skip_blanks();
            if (key == "custom_id") {
                std::string_view id;
                if (!plain_string(id) || id.empty())
                    return {}; // not a string, escaped, or empty: the full check decides
                return {id_scan_kind::found, id};
            }
            if (!skip_value())
                return {};
            skip_blanks();
            if (take('}'))
                return {id_scan_kind::absent, {}};
            if (!take(','))
                return {};
            skip_blanks();
        }
    }

private:
    bool take(char c) noexcept {
        if (p_ == end_ || *p_ != c)
            return false;
        ++p_;
        return true;
    }

    void skip_blanks() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n'))
            ++p_;
    }

    // A string with no backslash: its bytes are its value.
    bool plain_string(std::string_view& out) noexcept {
        if (!take('"'))
            return false;
        const char* first = p_;
        while (p_ != end_ && *p_ != '"' && *p_ != '\\')
            ++p_;
        if (p_ == end_ || *p_ == '\\')
            return false;
        out = std::string_view(first, static_cast<std::size_t>(p_ - first));
        ++p_;
        return true;
    }

    // Past the string whose opening quote is at p_; an escape skips the byte after it.
    bool skip_string() noexcept {
        ++p_;
        while (p_ != end_) {
            const char c = *p_++;
            if (c == '"')
                return true;
            if (c == '\\') {
                if (p_ == end_)
                    return false;
                ++p_;
            }
        }
        return false;
    }

    // Past one value. Containers are skipped by counting brackets outside strings; what is
    // inside them is not read. Scalars run to the next delimiter.
    bool skip_value() noexcept {
        if (p_ == end_)
            return false;
        if (*p_ == '"')
            return skip_string();
        if (*p_ == '{' || *p_ == '[') {
            std::size_t depth = 0;
            while (p_ != end_) {
                const char c = *p_;
                if (c == '"') {
                    if (!skip_string())
                        return false;
                    continue;
                }
                ++p_;
                if (c == '{' || c == '[')
                    ++depth;
                else if ((c == '}' || c == ']') && --depth == 0)
                    return true;
            }
            return false;
        }
        const char* first = p_;
        while (p_ != end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\t' &&
               *p_ != '\r' && *p_ != '\n' && *p_ != '"' && *p_ != '{' && *p_ != '[' && *p_ != ':')
            ++p_;
        return p_ != first;
    }

    const char* p_;
    const char* end_;
};

} // namespace

id_scan scan_custom_id(std::string_view line) noexcept {
    return scanner(line).run();
}

} // namespace sluice::detail
