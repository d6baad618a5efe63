#include "ingest/events/event_codec.h"

#include <cstring>

namespace pm {

namespace {

constexpr std::uint8_t kVersion = 1;

template <class T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // x86-64 and aarch64 are little-endian, like the format
  out.append(buf, sizeof(T));
}

void put_string(std::string& out, std::string_view s) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

template <class T, class Fn>
void put_optional(std::string& out, const std::optional<T>& v, Fn&& put_value) {
  put<std::uint8_t>(out, v ? 1 : 0);
  if (v) put_value(out, *v);
}

void put_opt_string(std::string& out, const std::optional<std::string>& v) {
  put_optional(out, v, [](std::string& o, const std::string& s) { put_string(o, s); });
}
void put_opt_double(std::string& out, const std::optional<double>& v) {
  put_optional(out, v, [](std::string& o, double d) { put<double>(o, d); });
}
void put_opt_int32(std::string& out, const std::optional<std::int32_t>& v) {
  put_optional(out, v, [](std::string& o, std::int32_t i) { put<std::int32_t>(o, i); });
}

struct Truncated {};

class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<std::uint32_t>();
    need(n);
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool present() {
    const auto flag = get<std::uint8_t>();
    if (flag > 1) throw Truncated{};
    return flag == 1;
  }
  std::optional<std::string> opt_string() { return present() ? std::optional(get_string()) : std::nullopt; }
  std::optional<double> opt_double() { return present() ? std::optional(get<double>()) : std::nullopt; }
  std::optional<std::int32_t> opt_int32() {
    return present() ? std::optional(get<std::int32_t>()) : std::nullopt;
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  void need(std::size_t n) const {
    if (n > data_.size() - pos_) throw Truncated{};
  }
  std::string_view data_;
  std::size_t pos_ = 0;
};

// The body of a trade or trigger, in encode_event's field order; throws Truncated.
TradeEvent decode_trade(Cursor& c) {
  TradeEvent t;
  t.condition_id = c.get_string();
  t.trade_id = c.get_string();
  t.token_id = c.opt_string();
  t.price = c.get<double>();
  t.size = c.get<double>();
  t.side = c.get_string();
  t.timestamp_ms = c.get<std::int64_t>();
  t.outcome = c.opt_string();
  t.outcome_index = c.opt_int32();
  t.raw_json = c.get_string();
  return t;
}

TriggerEvent decode_trigger(Cursor& c) {
  TriggerEvent g;
  g.token_id = c.get_string();
  g.condition_id = c.get_string();
  g.threshold = c.get<double>();
  g.trigger_timestamp_ms = c.get<std::int64_t>();
  g.price = c.opt_double();
  g.size = c.opt_double();
  g.model_score = c.opt_double();
  g.model_version = c.opt_string();
  g.outcome = c.opt_string();
  g.outcome_index = c.opt_int32();
  return g;
}

}  // namespace

void encode_event(const Event& event, std::string& out) {
  put<std::uint8_t>(out, kVersion);
  put<std::uint8_t>(out, static_cast<std::uint8_t>(event.type()));
  put<std::int64_t>(out, event.received_ms);
  if (const auto* t = std::get_if<TradeEvent>(&event.body)) {
    put_string(out, t->condition_id);
    put_string(out, t->trade_id);
    put_opt_string(out, t->token_id);
    put<double>(out, t->price);
    put<double>(out, t->size);
    put_string(out, t->side);
    put<std::int64_t>(out, t->timestamp_ms);
    put_opt_string(out, t->outcome);
    put_opt_int32(out, t->outcome_index);
    put_string(out, t->raw_json);
  } else {
    const auto& g = std::get<TriggerEvent>(event.body);
    put_string(out, g.token_id);
    put_string(out, g.condition_id);
    put<double>(out, g.threshold);
    put<std::int64_t>(out, g.trigger_timestamp_ms);
    put_opt_double(out, g.price);
    put_opt_double(out, g.size);
    put_opt_double(out, g.model_score);
    put_opt_string(out, g.model_version);
    put_opt_string(out, g.outcome);
    put_opt_int32(out, g.outcome_index);
  }
}

std::optional<Event> decode_event(std::string_view payload, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<Event> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  try {
    Cursor c(payload);
    if (c.get<std::uint8_t>() != kVersion) return fail("unknown event encoding version");
    const auto type = c.get<std::uint8_t>();
    Event event;
    event.received_ms = c.get<std::int64_t>();
    if (type == static_cast<std::uint8_t>(EventType::Trade)) {
      event.body = decode_trade(c);
    } else if (type == static_cast<std::uint8_t>(EventType::Trigger)) {
      event.body = decode_trigger(c);
    } else {
      return fail("unknown event type");
    }
    if (!c.at_end()) return fail("trailing bytes after the event");
    return event;
  } catch (const Truncated&) {
    return fail("payload ends inside a field");
  }
}

}  // namespace pm
