#include "experiment/dates.hpp"

#include <cctype>

#include <fmt/format.h>

namespace kiln::experiment {
namespace {

const char* kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                         "july",    "august",   "september", "october", "november", "december"};
const char* kDays[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int days_in(int y, int m) {
  static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : n[m - 1];
}
int weekday(Date t) {  // Sakamoto's method, 0 = Sunday
  static const int k[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  const int y = t.m < 3 ? t.y - 1 : t.y;
  return (y + y / 4 - y / 100 + y / 400 + k[t.m - 1] + t.d) % 7;
}
std::string ordinal(int d) {
  const char* suffix = (d % 100 >= 11 && d % 100 <= 13) ? "th" : d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
  return std::to_string(d) + suffix;
}
std::string cap(std::string s, int style) {
  if (style == 1) s[0] = static_cast<char>(std::toupper(s[0]));
  if (style == 2)
    for (char& c : s) c = static_cast<char>(std::toupper(c));
  return s;
}

}  // namespace

bool is_held_out(Date t) { return ((t.y * 10000 + t.m * 100 + t.d) * 2654435761u >> 16) % 5 == 0; }

Date random_date(Generator& g, bool held_out) {
  for (;;) {
    Date t{1950 + static_cast<int>(g.next_u64() % 100), 1 + static_cast<int>(g.next_u64() % 12), 1};
    t.d = 1 + static_cast<int>(g.next_u64() % static_cast<std::uint64_t>(days_in(t.y, t.m)));
    if (is_held_out(t) == held_out) return t;
  }
}

std::string render(Date t, int format, int style) {
  const std::string month = cap(kMonths[t.m - 1], style), mon = month.substr(0, 3), day = cap(kDays[weekday(t)], style);
  const std::string yy = fmt::format("{:02d}", t.y % 100);
  switch (format) {
    case 0: return fmt::format("{} of {} {}", ordinal(t.d), month, t.y);
    case 1: return fmt::format("{} {}, {}", month, t.d, t.y);
    case 2: return fmt::format("{} {}, {}", mon, t.d, yy);
    case 3: return fmt::format("{:02d}/{:02d}/{}", t.m, t.d, t.y);
    case 4: return fmt::format("{} {} {}", t.d, month, t.y);
    case 5: return fmt::format("{}.{:02d}.{:02d}", t.y, t.m, t.d);
    case 6: return fmt::format("{}, {} {}, {}", day, month, t.d, t.y);
    case 7: return fmt::format("{}.{}.{}", t.d, t.m, yy);
    case 8: return fmt::format("{} {}, {}", month, ordinal(t.d), t.y);
    case 9: return fmt::format("{:02d}-{}-{}", t.d, mon, t.y);
    case 10: return fmt::format("{} {} {}", mon, t.d, t.y);
    default: return fmt::format("{} {} {}", t.d, mon, yy);
  }
}

std::string render(Date t, Generator& g) {
  const int format = static_cast<int>(g.next_u64() % kDateFormats);
  return render(t, format, static_cast<int>(g.next_u64() % 3));
}

std::string iso(Date t) { return fmt::format("{:04d}-{:02d}-{:02d}", t.y, t.m, t.d); }

}  // namespace kiln::experiment
