#include "ingest/log/wal_format.h"

#include <cstdio>
#include <cstring>

#include "repos/util/crc32c.h"

namespace pm::wal {

namespace {

template <class T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

const char* magic_of(std::uint32_t version) { return version == 1 ? kMagicV1 : version == 2 ? kMagicV2 : kMagicV3; }

// The checksum a group marker (its kGroupMarkerSize bytes at `marker`) carries in a segment with
// the header `segment`: version 3 keyed by the log id, before it the plain record checksum.
std::uint32_t marker_masked_crc(const SegmentHeader& segment, const char* marker) {
  std::uint32_t crc = 0;
  if (segment.version >= 3) crc = crc32c::extend(crc, segment.log_id.data(), segment.log_id.size());
  return crc32c::mask(crc32c::extend(crc, marker + 4, kGroupMarkerSize - 4));
}

}  // namespace

std::string encode_segment_header(const SegmentHeader& h) {
  std::string out(magic_of(h.version), sizeof kMagicV3);
  out.append(reinterpret_cast<const char*>(h.log_id.data()), h.log_id.size());
  put<std::uint64_t>(out, h.segment);
  put<std::uint64_t>(out, h.first_lsn);
  put<std::uint64_t>(out, h.base_offset);
  put<std::uint32_t>(out, crc32c::mask(crc32c::value(out.data(), out.size())));
  put<std::uint32_t>(out, 0);
  return out;
}

bool decode_segment_header(const char* data, std::size_t n, SegmentHeader& out) {
  if (n < kSegmentHeaderSize) return false;
  if (std::memcmp(data, kMagicV3, sizeof kMagicV3) == 0) {
    out.version = 3;
  } else if (std::memcmp(data, kMagicV2, sizeof kMagicV2) == 0) {
    out.version = 2;
  } else if (std::memcmp(data, kMagicV1, sizeof kMagicV1) == 0) {
    out.version = 1;
  } else {
    return false;
  }
  if (crc32c::unmask(get<std::uint32_t>(data + kSegmentHeaderCrcAt)) != crc32c::value(data, kSegmentHeaderCrcAt)) return false;
  std::memcpy(out.log_id.data(), data + 8, out.log_id.size());
  out.segment = get<std::uint64_t>(data + 24);
  out.first_lsn = get<std::uint64_t>(data + 32);
  out.base_offset = get<std::uint64_t>(data + 40);
  return true;
}

void append_record(std::string& out, std::uint64_t lsn, std::uint8_t type, const std::string& payload) {
  const std::size_t start = out.size();
  put<std::uint32_t>(out, 0);  // checksum, filled below
  put<std::uint32_t>(out, static_cast<std::uint32_t>(payload.size()));
  put<std::uint64_t>(out, lsn);
  put<std::uint8_t>(out, type);
  out.append(payload);
  const std::uint32_t crc = crc32c::mask(crc32c::value(out.data() + start + 4, out.size() - start - 4));
  std::memcpy(out.data() + start, &crc, 4);
}

std::size_t begin_group(std::string& out, std::uint64_t first_lsn) {
  const std::size_t at = out.size();
  append_record(out, first_lsn, kRecordGroup, std::string(kGroupPayloadSize, '\0'));
  return at;
}

void finish_group(std::string& out, std::size_t marker_offset, std::uint32_t records, const SegmentHeader& segment) {
  const std::size_t body = marker_offset + kGroupMarkerSize;
  char* payload = out.data() + marker_offset + kRecordHeaderSize;
  const std::uint32_t body_crc = crc32c::mask(crc32c::value(out.data() + body, out.size() - body));
  const std::uint64_t body_bytes = out.size() - body;
  std::memcpy(payload, &records, 4);
  std::memcpy(payload + 4, &body_crc, 4);
  std::memcpy(payload + 8, &body_bytes, 8);
  const std::uint32_t crc = marker_masked_crc(segment, out.data() + marker_offset);
  std::memcpy(out.data() + marker_offset, &crc, 4);
}

bool group_marker_ok(const SegmentHeader& segment, const char* marker, GroupMarker& out) {
  const RecordHeader h = decode_record_header(marker);
  if (h.type != kRecordGroup || h.length != kGroupPayloadSize ||
      h.masked_crc != marker_masked_crc(segment, marker))
    return false;
  const char* payload = marker + kRecordHeaderSize;
  out.records = get<std::uint32_t>(payload);
  out.body_masked_crc = get<std::uint32_t>(payload + 4);
  out.body_bytes = get<std::uint64_t>(payload + 8);
  return true;
}

bool group_body_ok(const GroupMarker& marker, const char* body) {
  return crc32c::unmask(marker.body_masked_crc) == crc32c::value(body, static_cast<std::size_t>(marker.body_bytes));
}

RecordHeader decode_record_header(const char* data) {
  RecordHeader h;
  h.masked_crc = get<std::uint32_t>(data);
  h.length = get<std::uint32_t>(data + 4);
  h.lsn = get<std::uint64_t>(data + 8);
  h.type = get<std::uint8_t>(data + 16);
  return h;
}

bool record_checksum_ok(const char* record, std::size_t n) {
  return crc32c::unmask(get<std::uint32_t>(record)) == crc32c::value(record + 4, n - 4);
}

std::string segment_file_name(std::uint64_t segment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx.wal", static_cast<unsigned long long>(segment));
  return buf;
}

bool parse_segment_file_name(const std::string& name, std::uint64_t& segment) {
  if (name.size() != 20 || name.compare(16, 4, ".wal") != 0) return false;
  std::uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = name[static_cast<std::size_t>(i)];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  segment = v;
  return true;
}

std::string log_id_hex(const LogId& id) {
  std::string out;
  char buf[3];
  for (unsigned char b : id) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

}  // namespace pm::wal
