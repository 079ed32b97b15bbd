// Implements the room's plain rules.
#include "actors/room/rules.hpp"

#include <algorithm>

namespace gm::room {

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return -1;  // a continuation byte first, C0/C1 (overlong), or past F4
    }
    if (i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return -1;  // overlong, past U+10FFFF, or a surrogate
    }
    i += len;
    ++n;
  }
  return n;
}

std::string text_problem(const std::string& text, size_t max_chars) {
  auto n = utf8_length(text);
  if (n < 0) return "text must be valid UTF-8";
  if (text.find('\0') != std::string::npos) return "text must not contain the character U+0000";
  if (n == 0) return "text must not be empty";
  if (static_cast<size_t>(n) > max_chars) {
    return "text must be at most " + std::to_string(max_chars) + " characters";
  }
  bool blank = std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
  if (blank) return "text must not be only white space";
  return {};
}

const member* find_member(const room& r, const std::string& user) {
  auto it = r.index.find(user);
  return it == r.index.end() ? nullptr : &r.members[it->second];
}

member* find_member(room& r, const std::string& user) {
  auto it = r.index.find(user);
  return it == r.index.end() ? nullptr : &r.members[it->second];
}

member& add_member(room& r, const std::string& user, const std::string& at) {
  member m;
  m.user_id = user;
  m.joined = r.members.empty() ? 1 : r.members.back().joined + 1;
  m.joined_at = at;
  r.index[user] = r.members.size();
  r.members.push_back(std::move(m));
  return r.members.back();
}

void reindex(room& r) {
  std::sort(r.members.begin(), r.members.end(),
            [](const member& a, const member& b) { return a.joined < b.joined; });
  r.index.clear();
  for (size_t i = 0; i < r.members.size(); ++i) r.index[r.members[i].user_id] = i;
}

int64_t next_read_seq(const member& m, int64_t seq) {
  return std::max(m.read_seq, seq);
}

int64_t unread(const member& m, int64_t last_seq) {
  return std::max<int64_t>(0, last_seq - m.read_seq);
}

} // namespace gm::room
