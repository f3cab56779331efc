// The "checks" section: CheckBoxValues and CheckGradImageShapes.
#include "tests/cpp/test_util.h"

namespace crg_test {

// ---------------------------------------------------------------------------
// CheckBoxValues.

void TestCheckBoxValues() {
  using crg::CheckBoxValues;
  using crg::ErrorCode;
  const float kBad[] = {NAN, -NAN, INFINITY, -INFINITY};
  const std::vector<float> good = {0, 0, 1,     1,      0.1f,  -5,
                                   7, 2, 1e30f, -3e38f, 3e38f, 1e-40f};
  const std::vector<int32_t> ind = {0, 1, 2};
  EXPECT(CheckBoxValues(good.data(), ind.data(), 3, 3).ok(),
         "finite extreme boxes are valid");
  EXPECT(CheckBoxValues(nullptr, nullptr, 0, 0).ok(), "no boxes is valid");
  EXPECT(CheckBoxValues(nullptr, nullptr, 0, 5).ok(), "no boxes is valid");
  for (float bad : kBad) {
    for (int n = 0; n < 3; ++n) {
      for (int k = 0; k < 4; ++k) {
        std::vector<float> b = good;
        b[n * 4 + k] = bad;
        const crg::CheckResult r = CheckBoxValues(b.data(), ind.data(), 3, 3);
        const std::string where =
            "boxes[" + std::to_string(n) + ", " + std::to_string(k) + "]";
        EXPECT(r.code == ErrorCode::kInvalidArgument,
               "non-finite " << bad << " at " << where << ": " << r.message);
        EXPECT(r.message.find("boxes must be finite") != std::string::npos &&
                   r.message.find(where) != std::string::npos,
               "message names the box: " << r.message);
      }
    }
  }
  const int32_t kBadInd[] = {-1, 3, 4, INT32_MAX, INT32_MIN};
  for (int32_t bad : kBadInd) {
    for (int n = 0; n < 3; ++n) {
      std::vector<int32_t> i = ind;
      i[n] = bad;
      const crg::CheckResult r = CheckBoxValues(good.data(), i.data(), 3, 3);
      EXPECT(r.code == ErrorCode::kOutOfRange,
             "box_ind " << bad << " at " << n << ": " << r.message);
      EXPECT(r.message.find("box_ind has values outside [0, batch_size)") !=
                     std::string::npos &&
                 r.message.find("box_ind[" + std::to_string(n) + "]") !=
                     std::string::npos,
             "message: " << r.message);
    }
  }
  // batch 0 with boxes: every index is out of range.
  EXPECT(CheckBoxValues(good.data(), ind.data(), 3, 0).code ==
             ErrorCode::kOutOfRange,
         "batch 0");
  // The first bad box is reported: a NaN in box 1 before a bad index in 2.
  {
    std::vector<float> b = good;
    std::vector<int32_t> i = ind;
    b[4 + 2] = NAN;
    i[2] = -7;
    const crg::CheckResult r = CheckBoxValues(b.data(), i.data(), 3, 3);
    EXPECT(r.code == ErrorCode::kInvalidArgument &&
               r.message.find("boxes[1, 2]") != std::string::npos,
           r.message);
    b[4 + 2] = 0;
    i[0] = 3;
    const crg::CheckResult r2 = CheckBoxValues(b.data(), i.data(), 3, 3);
    EXPECT(r2.code == ErrorCode::kOutOfRange &&
               r2.message.find("box_ind[0]") != std::string::npos,
           r2.message);
  }
  // Large index arrays: only values matter, and the check is linear.
  {
    const int64_t n = 100000;
    std::vector<float> b(n * 4, 0.5f);
    std::vector<int32_t> i(n, 6);
    EXPECT(CheckBoxValues(b.data(), i.data(), n, 7).ok(), "large valid");
    i[n - 1] = 7;
    EXPECT(!CheckBoxValues(b.data(), i.data(), n, 7).ok(), "large, last bad");
  }
}

// CheckGradImageShapes: each bad shape gets InvalidArgument and a message
// that names the argument.
crg::Shape MakeShape(std::initializer_list<int64_t> dims) {
  crg::Shape s;
  for (int64_t d : dims) s.dims[s.rank++] = d;
  return s;
}

void TestCheckGradImageShapes() {
  using crg::ErrorCode;
  struct Case {
    const char* what;
    crg::Shape grads, boxes, box_ind, image_size_shape;
    int64_t size[4];
    const char* expect;  // Substring of the message; nullptr: valid.
  };
  const crg::Shape g = MakeShape({3, 2, 2, 5});
  const crg::Shape b = MakeShape({3, 4});
  const crg::Shape i = MakeShape({3});
  const crg::Shape s4 = MakeShape({4});
  const Case cases[] = {
      {"valid", g, b, i, s4, {2, 7, 9, 5}, nullptr},
      {"valid empty",
       MakeShape({0, 1, 1, 0}),
       MakeShape({0, 4}),
       MakeShape({0}),
       s4,
       {0, 1, 1, 0},
       nullptr},
      {"grads 3-D",
       MakeShape({3, 2, 2}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads must be 4-D"},
      {"zero crop",
       MakeShape({3, 0, 2, 5}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads crop dimensions must be positive"},
      {"boxes [0]",
       g,
       MakeShape({0}),
       i,
       s4,
       {2, 7, 9, 5},
       "boxes must be 2-D"},
      {"boxes 5 columns",
       g,
       MakeShape({3, 5}),
       i,
       s4,
       {2, 7, 9, 5},
       "boxes must be 2-D"},
      {"box_ind [0, 0]",
       g,
       b,
       MakeShape({0, 0}),
       s4,
       {2, 7, 9, 5},
       "box_ind must be 1-D"},
      {"box_ind count",
       g,
       b,
       MakeShape({2}),
       s4,
       {2, 7, 9, 5},
       "box_ind has 2 elements"},
      {"grads count",
       MakeShape({4, 2, 2, 5}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads has 4 boxes"},
      {"image_size 3",
       g,
       b,
       i,
       MakeShape({3}),
       {2, 7, 9, 5},
       "image_size must be 1-D with 4 elements"},
      {"zero height",
       g,
       b,
       i,
       s4,
       {2, 0, 9, 5},
       "image_size height and width must be positive"},
      {"negative batch",
       g,
       b,
       i,
       s4,
       {-1, 7, 9, 5},
       "image_size batch and depth must be non-negative"},
      {"depth", g, b, i, s4, {2, 7, 9, 6}, "image_size and grads are"},
      {"int32 range",
       g,
       b,
       i,
       s4,
       {int64_t{1} << 31, 7, 9, 5},
       "does not fit in int32"},
      {"overflow",
       MakeShape({3, 2, 2, INT32_MAX}),
       b,
       i,
       s4,
       {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX},
       "has more elements than a tensor can index"},
  };
  for (const Case& c : cases) {
    crg::GradImageArgs args;
    const crg::CheckResult r = crg::CheckGradImageShapes(
        c.grads, c.boxes, c.box_ind, c.image_size_shape, c.size, &args);
    if (c.expect == nullptr) {
      EXPECT(r.ok(), c.what << ": " << r.message);
      EXPECT(args.batch == c.size[0] && args.depth == c.size[3] &&
                 args.num_boxes == c.boxes.dims[0],
             c.what << ": sizes filled in");
    } else {
      EXPECT(r.code == ErrorCode::kInvalidArgument &&
                 r.message.find(c.expect) != std::string::npos,
             c.what << ": " << r.message);
    }
  }
}

}  // namespace crg_test
