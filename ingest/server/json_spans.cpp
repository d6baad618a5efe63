#include "ingest/server/json_spans.h"

namespace pm {

namespace {

bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::size_t json_string_end(std::string_view text, std::size_t at) {
  std::size_t i = at + 1;
  while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
  return i < text.size() ? i + 1 : text.size();
}

std::string_view trim_json_whitespace(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && is_json_whitespace(text[begin])) ++begin;
  while (end > begin && is_json_whitespace(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

bool array_element_spans(std::string_view text, std::vector<std::string_view>& out) {
  text = trim_json_whitespace(text);
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return false;
  int depth = 0;
  std::size_t element_start = 1;
  for (std::size_t i = 1; i + 1 < text.size();) {
    const char c = text[i];
    if (c == '"') {
      i = json_string_end(text, i);
      continue;
    }
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(trim_json_whitespace(text.substr(element_start, i - element_start)));
      element_start = i + 1;
    }
    ++i;
  }
  std::string_view last = trim_json_whitespace(text.substr(element_start, text.size() - 1 - element_start));
  if (!last.empty()) out.push_back(last);
  return true;
}

}  // namespace pm
