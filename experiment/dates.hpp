#pragma once
// Generated dates for the date translation task: a date written in one of many human formats ("3rd of
// March 2021", "Mar 3, 21", "03/03/2021", "Wednesday, March 3, 2021", ...) and its ISO form
// ("2021-03-03"). Every fifth date (by a hash) is held out of training, so a test set holds only dates
// a model never saw. Two-digit years read as 1950-2049.
//
//   kiln::Generator g(0);
//   const kiln::experiment::Date d = kiln::experiment::random_date(g, /*held_out=*/false);
//   std::string text = kiln::experiment::render(d, g), answer = kiln::experiment::iso(d);

#include <string>

#include "tensor/random.hpp"

namespace kiln::experiment {

struct Date {
  int y, m, d;
};

/// A date of 1950-2049 drawn from `g`: one of the held-out ones, or one of the others.
Date random_date(Generator& g, bool held_out);
bool is_held_out(Date t);
/// `t` in format `format` (0 to kDateFormats - 1) and letter case `style` (0 lower, 1 Title, 2 UPPER).
constexpr int kDateFormats = 12;
std::string render(Date t, int format, int style);
/// `t` in a format and case drawn from `g`.
std::string render(Date t, Generator& g);
std::string iso(Date t);

}  // namespace kiln::experiment
