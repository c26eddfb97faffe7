#pragma once
// Shape: the sizes of a tensor's dimensions, stored inline (no heap) for up to kMaxRank dims.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace kiln {

class Shape {
 public:
  static constexpr int kMaxRank = 8;
  /// Note [Addressable shapes]: no shape has more than 2^59 elements, counting only its non-zero dims, so
  /// numel() times any element size fits in int64 and a zero dim cannot hide huge ones ([0, 2^62, 2^62]).
  static constexpr std::int64_t kMaxElements = std::int64_t{1} << 59;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims);
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::int64_t>(*first));
  }

  int rank() const { return rank_; }
  bool empty() const { return rank_ == 0; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return dims_[static_cast<std::size_t>(i)]; }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::int64_t* begin() { return dims_.data(); }
  std::int64_t* end() { return dims_.data() + rank_; }

  void push_back(std::int64_t d);
  void insert(int pos, std::int64_t d);
  void erase(int pos);

  /// Product of the dims (1 for a scalar).
  std::int64_t numel() const;
  std::vector<std::int64_t> vec() const { return {begin(), end()}; }
  /// "[2, 3]"
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b);
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

/// Maps a possibly negative axis into [0, rank); throws naming `op` when out of range.
int normalize_axis(std::int64_t axis, int rank, const char* op);

/// NumPy broadcasting of two shapes; throws naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace kiln

template <>
struct fmt::formatter<kiln::Shape> : fmt::formatter<std::string> {
  auto format(const kiln::Shape& s, fmt::format_context& ctx) const {
    return fmt::formatter<std::string>::format(s.str(), ctx);
  }
};
