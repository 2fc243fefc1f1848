/* Double-precision n-body (the Computer Language Benchmarks Game's five planets): fadd, fmul,
 * fdiv, fsqrt and fused multiply-adds. Checksum: the bits of the final energy and positions, so
 * every rounding must agree across machines (IEEE 754 makes that deterministic). */
#include <math.h>
#include "bench.h"

#define STEPS 700000
#define N 5

static const double PI = 3.141592653589793, SOLAR_MASS = 4 * PI * PI, DAYS = 365.24;

struct body { double x, y, z, vx, vy, vz, m; };

static struct body bodies[N] = {
  {0, 0, 0, 0, 0, 0, 1},
  {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
   1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05, 9.54791938424326609e-04},
  {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
   -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05, 2.85885980666130812e-04},
  {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
   2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05, 4.36624404335156298e-05},
  {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
   2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05, 5.15138902046611451e-05},
};

static void advance(double dt) {
  for (int i = 0; i < N; i++) {
    struct body *a = &bodies[i];
    for (int j = i + 1; j < N; j++) {
      struct body *b = &bodies[j];
      double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
      double d2 = dx * dx + dy * dy + dz * dz;
      double mag = dt / (d2 * sqrt(d2));
      a->vx -= dx * b->m * mag; a->vy -= dy * b->m * mag; a->vz -= dz * b->m * mag;
      b->vx += dx * a->m * mag; b->vy += dy * a->m * mag; b->vz += dz * a->m * mag;
    }
  }
  for (int i = 0; i < N; i++) {
    bodies[i].x += dt * bodies[i].vx; bodies[i].y += dt * bodies[i].vy; bodies[i].z += dt * bodies[i].vz;
  }
}

static double energy(void) {
  double e = 0;
  for (int i = 0; i < N; i++) {
    struct body *a = &bodies[i];
    e += 0.5 * a->m * (a->vx * a->vx + a->vy * a->vy + a->vz * a->vz);
    for (int j = i + 1; j < N; j++) {
      struct body *b = &bodies[j];
      double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
      e -= a->m * b->m / sqrt(dx * dx + dy * dy + dz * dz);
    }
  }
  return e;
}

static uint64_t bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

int main(int argc, char **argv) {
  uint64_t steps = bench_scaled(bench_scale(argc, argv), STEPS);
  double px = 0, py = 0, pz = 0;
  for (int i = 0; i < N; i++) {
    bodies[i].vx *= DAYS; bodies[i].vy *= DAYS; bodies[i].vz *= DAYS; bodies[i].m *= SOLAR_MASS;
    px += bodies[i].vx * bodies[i].m; py += bodies[i].vy * bodies[i].m; pz += bodies[i].vz * bodies[i].m;
  }
  bodies[0].vx = -px / SOLAR_MASS; bodies[0].vy = -py / SOLAR_MASS; bodies[0].vz = -pz / SOLAR_MASS;

  struct bench_span span;
  bench_begin(&span, "nbody");
  for (uint64_t s = 0; s < steps; s++) advance(0.01);
  double e = energy();
  uint64_t sum = bits(e);
  for (int i = 0; i < N; i++) sum = sum * 31 + (bits(bodies[i].x) ^ bits(bodies[i].y) ^ bits(bodies[i].z));
  char extra[64];
  snprintf(extra, sizeof extra, "energy=%.9f", e);
  bench_end(&span, sum, extra);
  return 0;
}
