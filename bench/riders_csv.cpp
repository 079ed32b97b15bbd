// For bench/dispatch.sh: prints N available riders scattered uniformly in a
// square of SPREAD degrees around (LAT, LNG), as CSV rows of the riders
// table (user_id, status, lat, lng, region, rating, level, version), with
// each rider's dispatch region computed as the node computes it
// (actors/dispatch/geo.hpp). Loading them with COPY spares the bench
// 100,000 online requests; a dispatcher reads its region's rows when it
// activates, as after a restart.
//
// With USERS_CSV, also writes there each rider's row of the users table
// (id, phone, email, full_name, password_hash, role 'rider'), in the same
// order, to be loaded first: a rider entity reads `users u LEFT JOIN
// riders r` and is a rider only if u.role is 'rider' (actors/rider/store.cpp),
// so a task can be offered to it. Phones are +2541 and 8 digits, emails
// rider<i>@bench.invalid (i from 1): unique, and apart from the client users
// of bench/lib.sh (+2547...).
//
//   riders_csv N LAT LNG SPREAD SEED [USERS_CSV]
#include <cstdio>
#include <cstdlib>
#include <random>

#include "actors/dispatch/geo.hpp"

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr, "usage: riders_csv N LAT LNG SPREAD SEED [USERS_CSV]\n");
    return 2;
  }
  std::FILE* users = nullptr;
  if (argc == 7 && (users = std::fopen(argv[6], "w")) == nullptr) {
    std::perror(argv[6]);
    return 1;
  }
  long n = std::atol(argv[1]);
  double lat = std::atof(argv[2]), lng = std::atof(argv[3]), spread = std::atof(argv[4]);
  std::mt19937_64 rng(static_cast<uint64_t>(std::atoll(argv[5])));
  std::uniform_real_distribution<double> off(-spread / 2, spread / 2);
  std::uniform_int_distribution<int> rating(30, 50), level(1, 10);
  std::uniform_int_distribution<uint64_t> bits;
  for (long i = 0; i < n; ++i) {
    uint64_t a = bits(rng), b = bits(rng);
    a = (a & ~0xF000ULL) | 0x4000ULL;  // version 4
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    double y = lat + off(rng), x = lng + off(rng);
    char id[96];  // 36 used; room for any value, so -Wformat-truncation has nothing to say
    std::snprintf(id, sizeof id, "%08llx-%04llx-%04llx-%04llx-%012llx",
                  static_cast<unsigned long long>(a >> 32),
                  static_cast<unsigned long long>((a >> 16) & 0xFFFF),
                  static_cast<unsigned long long>(a & 0xFFFF),
                  static_cast<unsigned long long>(b >> 48),
                  static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    std::printf("%s,available,%.7f,%.7f,%s,%.1f,%d,1\n", id, y, x,
                gm::dispatch::region_of(y, x).c_str(), rating(rng) / 10.0, level(rng));
    if (users != nullptr) {
      std::fprintf(users, "%s,+2541%08ld,rider%ld@bench.invalid,Bench rider %ld,x,rider\n", id,
                   i + 1, i + 1, i + 1);
    }
  }
  if (users != nullptr && std::fclose(users) != 0) {
    std::perror(argv[6]);
    return 1;
  }
  return 0;
}
