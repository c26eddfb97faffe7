#include "tensor/shape.hpp"

#include <algorithm>

#include "tensor/error.hpp"

namespace kiln {

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  for (auto d : dims) push_back(d);
}

Shape::Shape(const std::vector<std::int64_t>& dims) {
  for (auto d : dims) push_back(d);
}

void Shape::push_back(std::int64_t d) {
  KILN_CHECK(rank_ < kMaxRank, "shape: at most {} dimensions are supported", kMaxRank);
  KILN_CHECK(d >= 0, "shape: dimension {} has negative size {}", rank_, d);
  // Note [Addressable shapes]
  std::int64_t nonzero = 1;
  for (auto e : *this)
    if (e != 0) nonzero *= e;
  KILN_CHECK(d == 0 || d <= kMaxElements / nonzero, "shape: {} with a dimension of {} would have more than 2^59 elements",
             str(), d);
  dims_[static_cast<std::size_t>(rank_++)] = d;
}

void Shape::insert(int pos, std::int64_t d) {
  push_back(d);
  std::rotate(dims_.begin() + pos, dims_.begin() + rank_ - 1, dims_.begin() + rank_);
}

void Shape::erase(int pos) {
  std::copy(dims_.begin() + pos + 1, dims_.begin() + rank_, dims_.begin() + pos);
  --rank_;
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (auto d : *this) n *= d;
  return n;
}

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(begin(), end(), ", ")); }

bool operator==(const Shape& a, const Shape& b) {
  return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
}

int normalize_axis(std::int64_t axis, int rank, const char* op) {
  const int lo = rank == 0 ? -1 : -rank;
  const int hi = rank == 0 ? 0 : rank - 1;
  KILN_CHECK(axis >= lo && axis <= hi, "{}: dimension {} is out of range for a tensor of rank {}",
             op, axis, rank);
  return static_cast<int>(axis < 0 ? axis + std::max(rank, 1) : axis);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int rank = std::max(a.rank(), b.rank());
  Shape out;
  for (int i = 0; i < rank; ++i) {
    const int ia = a.rank() - rank + i, ib = b.rank() - rank + i;
    const std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    KILN_CHECK(da == db || da == 1 || db == 1,
               "{}: shapes {} and {} cannot be broadcast together (dimension {}: {} vs {})", op, a,
               b, i, da, db);
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

}  // namespace kiln
