#pragma once
// Known passwords: the database passwords this process was given. Text that quotes one bare is
// masked by redact_url() wherever it appears, whatever surrounds it: libpq's error for a badly
// percent-encoded password ("invalid percent-encoded token: \"...\"") names it with no URL or
// "password=" around it for a pattern to find. Kept for the life of the process; any thread.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace pm {

// Adds the non-empty strings among `passwords` to the known ones.
void remember_passwords(const std::vector<std::string>& passwords);
// Where known passwords occur in `text`: (offset, length) pairs, in no particular order, possibly
// overlapping.
std::vector<std::pair<std::size_t, std::size_t>> known_password_spans(const std::string& text);

}  // namespace pm
