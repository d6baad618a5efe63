#pragma once
// Where the elements of a JSON array lie in its text, so that each element can be kept byte for
// byte as it was received (a simdjson DOM keeps values, not their source text). Only for text a
// JSON parser has already accepted: the scan tracks strings, escapes and nesting, it does not
// validate. Pure functions; any thread.
#include <cstddef>
#include <string_view>
#include <vector>

namespace pm {

// `text` without leading and trailing JSON whitespace (space, tab, CR, LF).
std::string_view trim_json_whitespace(std::string_view text);

// The index just past the string whose opening quote is at `at` (escaped quotes stay inside it);
// text.size() when it does not end.
std::size_t json_string_end(std::string_view text, std::size_t at);

// Appends the text of each top-level element of the array `text` to `out` (trimmed of
// whitespace), in order. False when `text` (trimmed) is not an array: nothing appended then.
bool array_element_spans(std::string_view text, std::vector<std::string_view>& out);

}  // namespace pm
