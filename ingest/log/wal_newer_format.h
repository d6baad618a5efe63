#pragma once
// WalNewerFormat: a log segment or archive file written in a format newer than this build reads
// (by a later pm-ingestd, before a downgrade). Nothing is known to be wrong with it: only that this
// build cannot read it. So it is no WalCorruption (nor archive::ArchiveDamage): what steps over
// damage (`replay --skip-damaged`, salvage) never steps over it, and neither the daemon nor
// pm-ingestctl calls it damage: they stop, naming the file and its format, and exit 1 (2 is
// damage).
//
// A newer format is known by its magic alone, "<prefix>NN\n" with NN two decimal digits above the
// newest version this build knows ("PMWAL04\n".."PMWAL99\n" for segments): its checksums and
// layout are unknown, so nothing else of the file is read.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pm::wal {

class WalNewerFormat : public std::runtime_error {
 public:
  // `file` is in `format` ("log format", "archive format") `version`; this build reads versions 1
  // to `newest` of it.
  WalNewerFormat(const std::string& file, const std::string& format, std::uint32_t version, std::uint32_t newest);
  const std::string& file() const { return file_; }
  std::uint32_t version() const { return version_; }

 private:
  std::string file_;
  std::uint32_t version_;
};

// The version NN of the 8-byte magic "<prefix>NN\n" at `data` (`prefix` 5 characters) when NN is
// above `newest`; 0 for any other bytes, fewer than 8 included.
std::uint32_t newer_magic_version(const char* data, std::size_t n, std::string_view prefix, std::uint32_t newest);

// newer_magic_version, unless the bytes are a header of a format this build knows with a bit
// flipped in its magic's digits ("PMWAL03\n" read as "PMWAL07\n"): with one of the known magics
// ("<prefix>01\n".."<prefix><newest>\n") in its place, the header's own checksum (masked crc32c of
// bytes [0, crc_at), stored at crc_at) checks out. That is damage, and 0 is returned (the caller's
// decoding then calls it damage). A header too short to hold the checksum is judged by its magic.
std::uint32_t newer_format_version(const char* data, std::size_t n, std::string_view prefix, std::uint32_t newest,
                                   std::size_t crc_at);

// Throws WalNewerFormat for `path` when the `n` bytes at `data` begin with the magic of a newer log
// segment format ("PMWAL" and a version above wal::kFormatVersion, newer_format_version: pass the
// whole header when there is one, so a flipped magic is told apart); returns otherwise.
void throw_if_newer_segment(const std::string& path, const char* data, std::size_t n);

// Whether `e` is a WalNewerFormat.
bool is_newer_format(const std::exception& e);

}  // namespace pm::wal
