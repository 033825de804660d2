#pragma once

#include "detail/trim.hpp"

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::detail {

// Where the values of the document a simdjson DOM parser last parsed stand in its text. The DOM
// keeps each value, unescaped and parsed, but not where it was written; the index of structural
// characters that stage 1 built for it does: every bracket, colon and comma, and the first byte
// of every string and scalar, in document order. A value is named here by its place in that
// index. Walked only for a value whose text is wanted as written (a request body, tool
// definitions), so a document is validated and taken apart once, by the DOM parser, and never
// re-scanned byte by byte. Valid until the parser parses again; only for a document it accepted
// (the index of a refused one may stop anywhere).
class value_spans {
public:
    value_spans(const simdjson::dom::parser& parser, const char* text) noexcept
        : at_(parser.implementation->structural_indexes.get())
        , count_(parser.implementation->n_structural_indexes)
        , text_(text) {}

    // The root value.
    static constexpr std::uint32_t root = 0;

    // The structural character just past the value at `at`: a comma, a closing bracket, or the
    // end of the document.
    std::uint32_t after(std::uint32_t at) const noexcept {
        if (!opens(at))
            return at + 1;
        int depth = 0;
        do {
            const char c = byte(at++);
            depth += (c == '{' || c == '[') - (c == '}' || c == ']');
        } while (depth > 0);
        return at;
    }

    // The value at `at`, exactly as written: a container up to its closing bracket, a scalar
    // up to the next structural character, without the blanks before it.
    std::string_view text(std::uint32_t at) const noexcept {
        const std::uint32_t next = after(at);
        const char* first = text_ + at_[at];
        if (opens(at))
            return {first, static_cast<std::size_t>(text_ + at_[next - 1] + 1 - first)};
        return trim_right(std::string_view(first, at_[next] - at_[at]), json_blanks);
    }

    // text(at) for a container that is the last member or element of the root: it ends just
    // before the root's closing bracket, found without walking through it.
    std::string_view last_text(std::uint32_t at) const noexcept {
        const char* first = text_ + at_[at];
        return {first, static_cast<std::size_t>(text_ + at_[count_ - 2] + 1 - first)};
    }

    // The first child of the container at `open`, which has one (of an object, the first
    // member's value, past its key and colon).
    std::uint32_t first_child(std::uint32_t open) const noexcept {
        return byte(open) == '{' ? open + 3 : open + 1;
    }

    // The child after the one at `at`, which its container has (a comma follows `at`'s value).
    std::uint32_t next_child(std::uint32_t at, bool in_object) const noexcept {
        return after(at) + (in_object ? 3 : 1);
    }

private:
    char byte(std::uint32_t at) const noexcept { return text_[at_[at]]; }
    bool opens(std::uint32_t at) const noexcept {
        const char c = byte(at);
        return c == '{' || c == '[';
    }

    const std::uint32_t* at_;
    std::uint32_t count_;
    const char* text_;
};

// The places of one container's children, found in order and only when asked for: a walk that
// wants the text of few values pays only for skipping to those, and each child is skipped at
// most once however many are asked for. The container's own place may itself be found lazily,
// as the k-th child of its parent's positions. Children are asked for in increasing order.
class child_positions {
public:
    // The children of the container at `open`.
    child_positions(const value_spans& spans, std::uint32_t open, bool object) noexcept
        : spans_(spans)
        , open_(open)
        , object_(object) {}

    // The children of the container that is child `k` of `parent`.
    child_positions(child_positions& parent, std::size_t k, bool object) noexcept
        : spans_(parent.spans_)
        , parent_(&parent)
        , parent_k_(k)
        , object_(object) {}

    // The place of child `k`, which the container has; k never less than the last asked.
    std::uint32_t at(std::size_t k) noexcept {
        if (!started_) {
            if (parent_)
                open_ = parent_->at(parent_k_);
            known_ = spans_.first_child(open_);
            started_ = true;
        }
        for (; index_ < k; ++index_)
            known_ = spans_.next_child(known_, object_);
        return known_;
    }

    const value_spans& spans() const noexcept { return spans_; }

private:
    const value_spans& spans_;
    child_positions* parent_ = nullptr;
    std::size_t parent_k_ = 0;
    std::uint32_t open_ = 0;
    bool object_;
    bool started_ = false;
    std::size_t index_ = 0;
    std::uint32_t known_ = 0;
};

} // namespace sluice::detail
