#include <sluice/redis/shared_budget.hpp>

#include "redis/lease_script.hpp"
#include "redis/resp.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using sluice::detail::resp_parse;
using sluice::detail::resp_value;

TEST_CASE("commands are arrays of bulk strings") {
    std::string out;
    detail::resp_encode(out, {"SET", "k", std::string("a\r\nb", 4)});
    CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
}

TEST_CASE("replies parse at every split point") {
    const std::string reply = "*5\r\n$4\r\n2.25\r\n$3\r\n250\r\n:3\r\n$1\r\n0\r\n+OK\r\n";
    for (std::size_t cut = 0; cut < reply.size(); ++cut) {
        resp_value v;
        CHECK(resp_parse(std::string_view(reply).substr(0, cut), v) == 0);
    }
    resp_value v;
    REQUIRE(resp_parse(reply, v) == static_cast<std::ptrdiff_t>(reply.size()));
    REQUIRE(v.type == resp_value::kind::array);
    REQUIRE(v.items.size() == 5);
    CHECK(v.items[0].text == "2.25");
    CHECK(v.items[2].number == 3);
    CHECK(v.items[4].text == "OK");
}

TEST_CASE("errors, nulls and garbage") {
    resp_value v;
    CHECK(resp_parse("-NOSCRIPT No matching script\r\n", v) > 0);
    CHECK(v.is_error());
    CHECK(v.text.rfind("NOSCRIPT", 0) == 0);
    CHECK(resp_parse("$-1\r\n", v) == 5);
    CHECK(v.type == resp_value::kind::null);
    CHECK(resp_parse("HTTP/1.1 200 OK\r\n", v) == -1);
    CHECK(resp_parse(":12x\r\n", v) == -1);
    CHECK(resp_parse("$3\r\nabcd\r\n", v) == -1);
}

TEST_CASE("the lease script's reply becomes a lease_reply") {
    resp_value v;
    REQUIRE(resp_parse("*5\r\n$3\r\n2.5\r\n$3\r\n250\r\n:4\r\n$6\r\n12.001\r\n$1\r\n0\r\n", v) > 0);
    lease_reply r;
    REQUIRE(detail::parse_lease_reply(v, r));
    CHECK(r.granted_requests == 2.5);
    CHECK(r.granted_tokens == 250);
    CHECK(r.members == 4);
    CHECK(r.wait == std::chrono::milliseconds(13)); // rounded up: never early
    CHECK(r.held.count() == 0);
    resp_value bad;
    REQUIRE(resp_parse("+OK\r\n", bad) > 0);
    CHECK_FALSE(detail::parse_lease_reply(bad, r));
}

TEST_CASE("redis URLs: user, password, port, db, TLS, and a password never shown") {
    error_code ec;
    redis_url u = redis_url::parse("redis://127.0.0.1:6380/2", ec);
    REQUIRE_FALSE(ec);
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 6380);
    CHECK(u.db == 2);
    CHECK_FALSE(u.tls);
    u = redis_url::parse("rediss://alice:s%40cret@redis.internal", ec);
    REQUIRE_FALSE(ec);
    CHECK(u.tls);
    CHECK(u.user == "alice");
    CHECK(u.password == "s@cret");
    CHECK(u.port == 6379);
    CHECK(u.redacted() == "rediss://alice:***@redis.internal:6379");
    u = redis_url::parse("redis://:hunter2@[::1]:7000", ec);
    REQUIRE_FALSE(ec);
    CHECK(u.host == "::1");
    CHECK(u.user.empty());
    CHECK(u.password == "hunter2");
    CHECK(u.redacted() == "redis://:***@[::1]:7000");
    for (const char* bad : {"http://h:1",
                            "redis://",
                            "redis://h:0",
                            "redis://h:99999",
                            "redis://h/x",
                            "redis://u:p%4@h"}) {
        redis_url::parse(bad, ec);
        CHECK(ec);
    }
    CHECK(redact_redis_url("redis://u:topsecret@h:notaport").find("topsecret") ==
          std::string::npos);
}

TEST_CASE("the default budget key names the account without its key") {
    const std::string a = default_budget_key("https://api.openai.com/v1", "sk-secret-1");
    CHECK(a.rfind("sluice-", 0) == 0);
    CHECK(a.size() == 7 + 16);
    CHECK(a.find("secret") == std::string::npos);
    CHECK(a == default_budget_key("https://api.openai.com/v1", "sk-secret-1"));
    CHECK(a != default_budget_key("https://api.openai.com/v1", "sk-secret-2"));
    CHECK(a != default_budget_key("https://example.com/v1", "sk-secret-1"));
}

TEST_CASE("shared budget options are checked, the URL redacted") {
    shared_budget_options o;
    CHECK_NOTHROW(o.validate()); // off
    o.url = "mysql://u:pw12345678@h";
    try {
        o.validate();
        FAIL("accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("pw12345678") == std::string::npos);
    }
    o.url = "redis://127.0.0.1:6379";
    CHECK_NOTHROW(o.validate());
}
