#include <sluice/inline_string.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>

using sluice::inline_string;

TEST_CASE("an inline_string keeps any value whole, short or longer than its room") {
    const std::string id = "req_0123456789abcdef0123456789abcdef"; // OpenAI's 36 characters
    const std::string huge(500, 'x');
    inline_string<40> s;
    CHECK(s.empty());
    s = id;
    CHECK(s == id);
    CHECK(s.size() == id.size());
    s = huge; // past the inline room: on the heap, not cut
    CHECK(s == huge);
    s = "short"; // and back inline
    CHECK(s == "short");
    CHECK(s.str() == "short");
    s.clear();
    CHECK(s.empty());
    CHECK(s.view().empty());
}

TEST_CASE("copies and moves of an inline_string carry its value, inline or not") {
    for (const std::string& value : {std::string("6m0s"), std::string(100, 'k')}) {
        INFO(value.size());
        inline_string<24> a(value);
        inline_string<24> b = a;
        CHECK(b == value);
        CHECK(a == value);
        inline_string<24> c = std::move(a);
        CHECK(c == value);
        inline_string<24> d;
        d = b;
        CHECK(d == value);
        inline_string<24> e;
        e = std::move(d);
        CHECK(e == value);
        inline_string<24>& same = e;
        e = same; // self-assignment keeps the value
        CHECK(e == value);
        CHECK(("id: " + e) == "id: " + value);
    }
}
