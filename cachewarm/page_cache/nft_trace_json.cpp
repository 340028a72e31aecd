#include "cachewarm/page_cache/nft_trace_json.hpp"

#include <cerrno>
#include <cstdint>

namespace knext::json {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  bool failed() const { return !error_.empty(); }
  Error error() const { return Error{"bad JSON at byte " + std::to_string(pos_) + ": " + error_}; }

  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }
  char peek() {
    skip_space();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool consume(char c) {
    if (peek() != c) return fail(std::string("expected '") + c + "'");
    ++pos_;
    return true;
  }
  bool fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
    return false;
  }

  // A string value starting at the current position, decoded into `out`.
  bool parse_string(std::string& out) {
    if (!consume('"')) return false;
    out.clear();
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u':
          if (!parse_unicode_escape(out)) return false;
          break;
        default:
          return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  // Checks and steps over one value of any kind.
  bool skip_value(int depth) {
    if (depth > kMaxDepth) return fail("nested too deeply");
    char c = peek();
    if (c == '"') {
      std::string ignored;
      return parse_string(ignored);
    }
    if (c == '{') return skip_container('}', depth, true);
    if (c == '[') return skip_container(']', depth, false);
    if (c == 't') return literal("true");
    if (c == 'f') return literal("false");
    if (c == 'n') return literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    return fail(c == '\0' ? "unexpected end" : "unexpected character");
  }

  size_t pos() {
    skip_space();
    return pos_;
  }
  std::string_view slice(size_t begin, size_t end) const {
    return text_.substr(begin, end - begin);
  }

 private:
  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return fail("unexpected character");
    pos_ += word.size();
    return true;
  }

  bool number() {
    size_t begin = pos_;
    if (text_[pos_] == '-') ++pos_;
    bool digits = false;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      bool part =
          (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
      if (!part) break;
      digits = digits || (c >= '0' && c <= '9');
      ++pos_;
    }
    if (!digits) {
      pos_ = begin;
      return fail("bad number");
    }
    return true;
  }

  bool skip_container(char close, int depth, bool object) {
    ++pos_;  // the opening bracket
    if (peek() == close) {
      ++pos_;
      return true;
    }
    for (;;) {
      if (object) {
        std::string key;
        if (!parse_string(key) || !consume(':')) return false;
      }
      if (!skip_value(depth + 1)) return false;
      if (peek() == close) {
        ++pos_;
        return true;
      }
      if (!consume(',')) return false;
    }
  }

  bool hex4(uint32_t& out) {
    if (text_.size() - pos_ < 4) return fail("short \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      uint32_t v;
      if (c >= '0' && c <= '9') {
        v = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return fail("bad \\u escape");
      }
      out = out * 16 + v;
    }
    return true;
  }

  bool parse_unicode_escape(std::string& out) {
    uint32_t cp;
    if (!hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low;
      if (text_.substr(pos_, 2) != "\\u") return fail("lone high surrogate");
      pos_ += 2;
      if (!hex4(low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return fail("bad surrogate pair");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp == 0) return fail("NUL in string");
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

// Runs `each(parser)` for every element of the array or object `text` (after the key for an
// object, stored in `key`), then checks nothing follows the closing bracket.
template <class Each>
Status for_each_element(std::string_view text, bool object, Each each) {
  Parser p(text);
  char open = object ? '{' : '[';
  char close = object ? '}' : ']';
  if (!p.consume(open)) return p.error();
  if (p.peek() == close) {
    p.consume(close);
  } else {
    for (;;) {
      std::string key;
      if (object && (!p.parse_string(key) || !p.consume(':'))) return p.error();
      if (!each(p, key)) return p.error();
      if (p.peek() == close) {
        p.consume(close);
        break;
      }
      if (!p.consume(',')) return p.error();
    }
  }
  if (!p.at_end()) {
    p.fail("trailing characters");
    return p.error();
  }
  return ok_status();
}

}  // namespace

Expected<std::string_view> member(std::string_view object_text, std::string_view key) {
  bool found = false;
  std::string_view value;
  auto status = for_each_element(object_text, true, [&](Parser& p, const std::string& k) {
    size_t begin = p.pos();
    if (!p.skip_value(1)) return false;
    if (!found && k == key) {
      found = true;
      value = p.slice(begin, p.pos());
    }
    return true;
  });
  if (!status) return status.error();
  if (!found) return Error{"no \"" + std::string(key) + "\" member", ENOENT};
  // The slice ends where the next token starts; drop the whitespace in between.
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\n' ||
                            value.back() == '\r')) {
    value.remove_suffix(1);
  }
  return value;
}

Expected<std::string> string_value(std::string_view text) {
  Parser p(text);
  std::string out;
  if (!p.parse_string(out)) return p.error();
  if (!p.at_end()) {
    p.fail("trailing characters");
    return p.error();
  }
  return out;
}

Expected<std::vector<std::string>> string_array(std::string_view text) {
  std::vector<std::string> out;
  auto status = for_each_element(text, false, [&](Parser& p, const std::string&) {
    std::string s;
    if (!p.parse_string(s)) return false;
    out.push_back(std::move(s));
    return true;
  });
  if (!status) return status.error();
  return out;
}

Expected<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  auto status = for_each_element(text, true, [&](Parser& p, const std::string& key) {
    std::string s;
    if (!p.parse_string(s)) return false;
    out.emplace_back(key, std::move(s));
    return true;
  });
  if (!status) return status.error();
  return out;
}

}  // namespace knext::json
