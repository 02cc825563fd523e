"""Every numerical tolerance of quasieq, in one place, each with the reason for its value.

All computation is float64 (unit roundoff u = 2^-53 ≈ 1.1e-16). Geometric tolerances are *relative to
the box scale* ``s = max(hi - lo)`` unless said otherwise. Region enumeration and the constructions
run on the unit box [0, 1]^D (unit_box.py: the box's affine map is folded into the first layer), where
s = 1, so a net on [-1000, 1000]^D, on a thin box 2 × 1e-9 or on [-1, 1]^D is treated alike.
"""

#: A box side hi − lo must span at least this many float64 spacings at its larger end
#: (``np.spacing(max(|lo|, |hi|))``), else the box is refused. Why 2^10: vertices, interior points and
#: facets are computed on the unit box and mapped back by x = lo + s·u, which rounds u to a multiple of
#: spacing/s; with ≥ 2^10 floats across a side that is ≤ 1e-3 of the side, so mapped points stay inside
#: their regions for every region wider than a thousandth of the box; a narrower "box" is a handful of
#: float64 points on which no region geometry can be written.
BOX_MIN_WIDTH_SPACINGS = 2**10

#: A vertex v lies *on* a hyperplane a·x + c = 0 (normalised so that ‖a‖ = 1, i.e. the value is the
#: signed Euclidean distance) when |a·v + c| ≤ ON_HYPERPLANE · s.
#: Why 1e-9: a vertex is the end of a chain of at most (number of neurons) edge interpolations, each of
#: which adds a few ulps of relative error; for nets up to ~10^4 neurons and weights up to ~10^3 the
#: accumulated error stays below ~1e-12·s. 1e-9 leaves three orders of margin against that noise while
#: still resolving distinct hyperplanes that are more than a billionth of the box apart.
ON_HYPERPLANE = 1e-9

#: A pre-activation whose gradient on a region has norm ≤ FLAT_GRADIENT · Σ_i |W_ji|·‖∇a_i‖ (the size of
#: the terms summed into it) is treated as constant on that region (it cannot cut it). Why 1e-12: such
#: gradients arise from exact cancellation (duplicated or opposite neurons), where float64 leaves
#: residues of a few ulps (~1e-16) of the summed terms; a real gradient is many orders larger.
FLAT_GRADIENT = 1e-12

#: Two affine maps (A, b) and (A', b') are *equal* when max|A - A'|·s + max|b - b'| ≤
#: AFFINE_EQUAL · (1 + max|A|·s + max|b|). Why 1e-9: maps composed through L layers carry relative
#: errors of order L·u·(product of weight norms); 1e-9 is well above that for the nets we target and
#: far below any meaningful difference of slopes.
AFFINE_EQUAL = 1e-9

#: Relative accuracy demanded of volume sums: the region volumes of a complex must add up to the box
#: volume within this relative error (the tests' check of an enumeration and a triangulation; the
#: engine itself only reports the discrepancy, ``volume check`` in ``regions``). Why 1e-9:
#: volumes are sums of simplex determinants whose rounding is ~D·u relative each.
VOLUME_SUM_RELATIVE = 1e-9

#: Default tolerance for "two outputs disagree": |a(x) - b(x)| > DISAGREE_RELATIVE·max(1, range).
#: Why 1e-6: float32 exports carry relative errors ~1e-7 per operation, so 1e-6 separates rounding
#: from real disagreement for exported models while catching every construction error of interest.
DISAGREE_RELATIVE = 1e-6

#: Step, relative to the box scale, taken outward from a facet's centroid to find the neighbour
#: across it. Why 1e-7: large enough (10^2 × ON_HYPERPLANE) that the point is classified strictly on
#: the far side, small enough that it stays inside the neighbouring region for regions wider than
#: 1e-6·s, far below the cells the engine keeps in practice.
NEIGHBOUR_STEP = 1e-7

#: Dimension up to which volumes are exact (vertex enumeration + triangulation); above it the volume is
#: a Monte-Carlo estimate with its sample count. Why 6: the number of vertices of a region grows like
#: (facets)^(D/2); beyond D = 6 vertex enumeration dominates and exact volumes stop paying off.
EXACT_VOLUME_MAX_DIM = 6

#: The exact volumes (regions/polytope.py, face_volume) take the length of a facet normal's part outside
#: a face's normal space Q as ‖n‖² − ‖Qᵀn‖² when that is at least PROJECTION_CANCELLATION·‖n‖², and by
#: Gram–Schmidt otherwise. Why 1/16: the difference carries an absolute error of a few u·‖n‖², so
#: at ≥ ‖n‖²/16 the length is relative-exact to ~2^5 u ≈ 1e-14 (the subtraction loses at most 4 bits),
#: while normals that nearly lie in Q, where it would lose more, take the slower, stable way.
PROJECTION_CANCELLATION = 1.0 / 16.0

#: A set of vertices spans an affine subspace of dimension k when exactly k singular values of the
#: centred point matrix exceed FACE_RANK · s (used to recognise the facets of a polytope face while
#: triangulating). Why 1e-9: the same scale as ON_HYPERPLANE — vertices that satisfy a facet equation
#: to 1e-9·s are, by that tolerance, on the facet, so their spread off it must count as zero too.
FACE_RANK = 1e-9

#: A simplex whose inradius is ≤ SIMPLEX_MIN_INRADIUS · s is a sliver produced by rounding (nearly
#: coincident vertices) and is dropped; its volume is counted and added to the error bound of every
#: construction built on the simplices. Why 1e-9: a simplex that thin is below the vertex accuracy
#: (ON_HYPERPLANE) and its facet normals are meaningless, while its volume is ≤ ~D·1e-9·s^D.
SIMPLEX_MIN_INRADIUS = 1e-9

#: Two neighbouring regions with equal affine maps are merged only when the convex hull of their
#: vertices has the volume of their union to within MERGE_CONVEX_RELATIVE (relative): then the union
#: is convex. Why 1e-9: hull and region volumes are each accurate to ~D·u relative plus the vertex
#: error (ON_HYPERPLANE), and a genuinely non-convex union adds a notch whose relative volume is far
#: larger; a notch smaller than 1e-9 of the union adds at most that much measure to the error set.
MERGE_CONVEX_RELATIVE = 1e-9

#: A vertex within ON_HYPERPLANE of a hyperplane but farther than SLIVER · s from it marks a *sliver*:
#: a cell of positive but sub-tolerance thickness that the engine treats as lower-dimensional, drops
#: and counts. Why 1e-12: below it the offset is rounding noise (a vertex computed on a coincident
#: hyperplane, e.g. a duplicated neuron, sits ~1e-15·s off), above it the cell is real but negligible.
SLIVER = 1e-12

#: ``locate`` reads a neuron as active when its pre-activation exceeds PATTERN_ROUNDING times the
#: magnitude of the terms summed into it (Σ|W_ij a_j| + |b_i|). Why 1e-12: a pre-activation that is
#: exactly zero on a whole region (integer weights cancelling, duplicated neurons subtracted) comes out
#: of float64 as a few ulps (~1e-16) of those terms; a point NEIGHBOUR_STEP off a facet has a
#: pre-activation ~1e-7 of them, far above the guard.
PATTERN_ROUNDING = 1e-12

#: The wide quadratic net (polynomial factorisation) is refused as ill-conditioned when the product of
#: its computed factors differs from the input coefficients by more than QUADRATIC_FACTOR_RELATIVE ·
#: max|p_i| in some coefficient. Why 1e-8: for well-conditioned polynomials of degree ≤ ~20 the roots
#: from the balanced companion matrix rebuild the coefficients to ~n·u ≈ 1e-14; an error of 1e-8 means
#: the roots lost half of float64's digits (clustered or multiple roots, Wilkinson-type polynomials), so
#: the network would reproduce P only to ~1e-8 · Σ|x|^i relative, no longer "exact to rounding".
QUADRATIC_FACTOR_RELATIVE = 1e-8

#: A root z of a continued-fraction tail polynomial T_k(y) counts as real (a pole, when Re z lies in the
#: range of y = x² over the domain) when |Im z| ≤ QUADRATIC_POLE_GUARD · max(1, |z|). Why 1e-6: a double
#: real root comes out of the eigenvalue solver as a conjugate pair split by ~sqrt(u)·|z| ≈ 1e-8·|z|,
#: which must still count as real; a complex root that close to the real axis makes |T_k| as tiny on
#: the segment as a real one would.
QUADRATIC_POLE_GUARD = 1e-6

#: Default ε of the continued fraction's zero-coefficient perturbation, relative to max|p_i|. Why
#: 1e-8 ≈ sqrt(u): the perturbation changes P by ε·Σ|x|^i while the units then carry ratios c_{i+1}/ε,
#: whose rounding errors grow like u/ε; ε = sqrt(u)·max|p| balances the two at ~1e-8 relative.
QUADRATIC_PERTURB_RELATIVE = 1e-8

#: On load, the lowered net must match the source model (ONNX Runtime on the file, torch on the module)
#: on random inputs: |ours − theirs| ≤ LOWERING_MATCH_RELATIVE · max(1, s), s the largest entry of the
#: rounding scale of forward error analysis (quasieq.frontend.check.rounding_scale: the summed terms
#: |W||a| + |b| of every layer, propagated through |W|), which float32 rounding errors are relative to.
#: Why 1e-5: float32 has unit roundoff 6e-8, and the source rounds each of its ops (up to ~100 along a
#: path) in an association order that differs from our folded maps; 1e-5 ≈ 170 u covers that, while
#: any real lowering error (a wrong index, sign or bias) is of the order of the outputs themselves.
LOWERING_MATCH_RELATIVE = 1e-5

#: Largest magnitude a layer's values may reach on the box before a net is refused as overflowing.
#: Why 2^500 ≈ 3.3e150: the region engine and the checks multiply values of this size together
#: (hyperplane crossings t = z_u/(z_u − z_v) times coordinates, squared norms, differences of two nets'
#: outputs), so their squares must stay finite: (2^500)^2 = 2^1000 leaves a factor 2^24 (sums of up to
#: 16 million such terms) below float64's largest finite value ≈ 2^1024.
FORWARD_RANGE_MAX = 2.0**500
