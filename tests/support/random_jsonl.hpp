#pragma once

// Random JSONL inputs for tests that compare two readings of the same lines: every form the
// reader accepts, the ways a custom_id can be written (first, last, escaped, repeated, absent)
// and the ways a line can be bad, from a wrong field to a line cut or scribbled on. Ids come
// from a small pool, so that repeats are common, and include "line-N", the name of a line
// without one.
#include <random>
#include <string>

namespace sluice::test {

class random_jsonl {
public:
    explicit random_jsonl(std::uint64_t seed, std::size_t ids = 40)
        : rng_(seed)
        , ids_(ids) {}

    std::string id() {
        const std::size_t n = below(ids_);
        if (n % 10 == 9)
            return "line-" + std::to_string(1 + below(20)); // a line without an id's name
        return "id-" + std::to_string(n);
    }

    // One line, without its newline.
    std::string line() {
        std::string l = good_or_wrong();
        switch (below(10)) {
        case 0: // cut short
            if (!l.empty())
                l.resize(below(l.size()));
            break;
        case 1: { // one byte scribbled on
            static constexpr char bytes[] = "{}[]\":,\\ x0\t";
            if (!l.empty())
                l[below(l.size())] = bytes[below(sizeof bytes - 1)];
            break;
        }
        case 2:
            l += below(2) ? " x" : "}";
            break;
        default:
            break;
        }
        if (l.empty() || l.find_first_not_of(" \t\r") == std::string::npos)
            l = "{}"; // a blank line yields no record; keep the count of lines simple
        return l;
    }

    // `lines` lines, each ending in a newline.
    std::string text(std::size_t lines) {
        std::string t;
        for (std::size_t i = 0; i < lines; ++i)
            t += line() + "\n";
        return t;
    }

    std::size_t below(std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
    }

private:
    std::string quoted_id() {
        std::string v = id();
        switch (below(12)) {
        case 0: // escaped, the same id once unescaped
            v.replace(v.find('-'), 1, "\\u002d");
            break;
        case 1:
            return "\"\""; // empty
        case 2:
            return std::to_string(below(100)); // not a string
        default:
            break;
        }
        return "\"" + v + "\"";
    }

    std::string custom_id_key() {
        switch (below(15)) {
        case 0:
            return "\"custom\\u005fid\""; // the same key, escaped
        case 1:
            return "\"custom_ids\"";
        default:
            return "\"custom_id\"";
        }
    }

    std::string body() {
        static const std::string bodies[] = {
            R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5})",
            R"({"model":"m","messages":[{"role":"user","content":"say \"}{\" and \\"}]})",
            R"({"messages":[{"role":"user","content":"custom_id"}],"stream":true})",
            R"({"model":"m","messages":[],"stream":1})",
            R"([1,2])",
            R"("text")",
        };
        return bodies[below(sizeof bodies / sizeof bodies[0])];
    }

    std::string good_or_wrong() {
        const std::string sp = below(4) == 0 ? " " : "";
        const std::string id_member = custom_id_key() + sp + ":" + sp + quoted_id();
        std::string members[4];
        std::size_t n = 0;
        switch (below(4)) {
        case 0: // Batch API
        case 1:
            members[n++] = R"("method":")" + std::string(below(8) ? "POST" : "GET") + "\"";
            members[n++] = R"("url":"/v1/chat/completions")";
            members[n++] = "\"body\":" + sp + body();
            break;
        case 2: // a chat body
            members[n++] = R"("model":"m")";
            members[n++] = R"("messages":[{"role":"user","content":"custom_id\":\"x"}])";
            break;
        default: // a prompt
            members[n++] = R"("prompt":"p")";
            if (below(2))
                members[n++] = R"("model":"m")";
            break;
        }
        // Where the id goes: first (the usual), last, in the middle, twice, or nowhere.
        std::string out = sp + "{";
        const std::size_t where = below(10);
        const std::size_t at = where < 5 ? 0 : where < 7 ? n : where < 9 ? below(n + 1) : n + 1;
        for (std::size_t i = 0; i <= n; ++i) {
            if (i == at) {
                out += id_member;
                if (where == 8) // repeated: the first one wins
                    out += ",\"custom_id\":\"" + id() + "\"";
                if (i < n)
                    out += ",";
            }
            if (i < n) {
                out += members[i];
                if (i + 1 < n || (i + 1 == n && at == n))
                    out += ",";
            }
        }
        return out + "}" + sp;
    }

    std::mt19937_64 rng_;
    std::size_t ids_;
};

} // namespace sluice::test
