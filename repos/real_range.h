#pragma once
// Whether a double can be stored in a PostgreSQL REAL (float4) column: what the server's float4
// input accepts. A finite value that overflows to infinity, or a non-zero value that underflows
// to zero, is refused (22003 "value out of range for type real"); subnormal results are kept.
// Used by the binary COPY writer and by the daemon's line parser, so a value the database would
// refuse is refused on the line, before it is acknowledged.
#include <cmath>

namespace pm {

inline bool fits_real(double value) {
  if (!std::isfinite(value)) return false;
  const float f = static_cast<float>(value);
  return !std::isinf(f) && !(f == 0.0f && value != 0.0);
}

}  // namespace pm
