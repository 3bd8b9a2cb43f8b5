// Weight-stationary systolic array with AXI4-Lite control and AXI4-Stream data (see
// docs/systolic.md and morphware/systolic/regmap.py for the register map and stream formats).
//
// One command = one tiled GEMM  out = post(A (M x K) * W (K x N) + bias), run as P = KT * NT
// passes (one per R x C weight tile, K tiles innermost). The schedule is fixed by (M, KT, NT):
// a prologue of R+3 cycles loads the first weight tile and the first N tile's parameters, then
// every pass occupies a slot of S = max(M, R+3, ceil(C/2)) cycles in which its M activation rows
// enter the array while the next pass's weights (and parameters) load into the other bank.
// The last pass of every N tile sends its accumulated rows straight through the output stage,
// so draining overlaps computing. Whenever a stream the schedule needs in this cycle is not
// ready, the whole datapath freezes (global enable `adv`) and the stall counter counts the
// cycle; the cycle counter therefore equals the cycle model exactly, whatever the back-pressure.
`default_nettype none

module ws_top #(
    parameter integer R = 8,        // rows: K extent of a weight tile
    parameter integer C = 8,        // columns: N extent of a weight tile
    parameter integer DB = 8,       // data bits (8 or 16)
    parameter integer ACC = 32,     // accumulator bits
    parameter integer DEPTH = 256   // accumulator rows (max M per command)
) (
    input  wire              aclk,
    input  wire              aresetn,
    // AXI4-Lite control
    /* verilator lint_off UNUSEDSIGNAL */  // byte-lane bits of the addresses, strobes
    input  wire [5:0]        s_axil_awaddr,
    input  wire              s_axil_awvalid,
    output wire              s_axil_awready,
    input  wire [31:0]       s_axil_wdata,
    input  wire [3:0]        s_axil_wstrb,
    input  wire              s_axil_wvalid,
    output wire              s_axil_wready,
    output wire [1:0]        s_axil_bresp,
    output reg               s_axil_bvalid,
    input  wire              s_axil_bready,
    input  wire [5:0]        s_axil_araddr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire              s_axil_arvalid,
    output wire              s_axil_arready,
    output reg  [31:0]       s_axil_rdata,
    output wire [1:0]        s_axil_rresp,
    output reg               s_axil_rvalid,
    input  wire              s_axil_rready,
    // activations: one row of an A tile per beat, R lanes of DB bits
    input  wire [R*DB-1:0]   s_axis_a_tdata,
    input  wire              s_axis_a_tvalid,
    output wire              s_axis_a_tready,
    // weights and output-stage parameters: C lanes of 32 bits
    input  wire [C*32-1:0]   s_axis_w_tdata,
    input  wire              s_axis_w_tvalid,
    output wire              s_axis_w_tready,
    // outputs: one row of an N tile per beat, C lanes of 32 bits (sign-extended)
    output wire [C*32-1:0]   m_axis_o_tdata,
    output wire              m_axis_o_tvalid,
    input  wire              m_axis_o_tready,
    output wire              m_axis_o_tlast,
    output wire              irq
);
    localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam integer RW = (R > 1) ? $clog2(R) : 1;
    localparam integer PL = 2;              // PE pipeline: selected weight, product
    localparam integer DA = R + C + PL;     // issue -> de-skewed array result
    localparam integer NOUT = 8;            // output-stage registers (accumulate .. saturate)
    localparam integer DP = DA + NOUT;      // issue -> output pushed into the FIFO
    localparam integer SMIN = (R + 3 > (C + 1) / 2) ? R + 3 : (C + 1) / 2;
    // the slot counter reaches at most max(M, SMIN) - 1 in a slot, M - 1 + DP in the last pass
    localparam integer CW = $clog2(DEPTH + SMIN + DP + 1) + 1;
    localparam integer TW = AW + 6;         // tag: {eoc, pidx[1:0], row, last, first, valid}
    localparam [1:0] ST_IDLE = 2'd0, ST_RUN = 2'd1, ST_FLUSH = 2'd2;

    wire rst = !aresetn;

    // ---------------------------------------------------------------- registers (AXI4-Lite)
    reg [31:0] cfg_m, cfg_kt, cfg_nt;
    reg        cfg_relu, cfg_raw;
    reg [1:0]  state;
    reg        done_r, err_r;
    reg [31:0] cyc, stl;

    wire wr_fire = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
    assign s_axil_awready = wr_fire;
    assign s_axil_wready  = wr_fire;
    assign s_axil_bresp   = 2'b00;
    assign s_axil_rresp   = 2'b00;
    assign s_axil_arready = !s_axil_rvalid;
    wire start = wr_fire && (s_axil_awaddr[5:2] == 4'd0) && s_axil_wdata[0] && (state == ST_IDLE);
    wire cfg_ok = (cfg_m != 0) && (cfg_m <= DEPTH) && (cfg_kt != 0) && (cfg_nt != 0);

    always @(posedge aclk) begin
        if (rst) begin
            s_axil_bvalid <= 1'b0;
            s_axil_rvalid <= 1'b0;
            s_axil_rdata <= 32'd0;
            cfg_m <= 32'd0;
            cfg_kt <= 32'd0;
            cfg_nt <= 32'd0;
            cfg_relu <= 1'b0;
            cfg_raw <= 1'b0;
        end else begin
            if (wr_fire) begin
                s_axil_bvalid <= 1'b1;
                case (s_axil_awaddr[5:2])
                    4'd2: cfg_m <= s_axil_wdata;
                    4'd3: cfg_kt <= s_axil_wdata;
                    4'd4: cfg_nt <= s_axil_wdata;
                    4'd5: begin
                        cfg_relu <= s_axil_wdata[0];
                        cfg_raw <= s_axil_wdata[1];
                    end
                    default: ;
                endcase
            end else if (s_axil_bready) begin
                s_axil_bvalid <= 1'b0;
            end
            if (s_axil_arvalid && !s_axil_rvalid) begin
                s_axil_rvalid <= 1'b1;
                case (s_axil_araddr[5:2])
                    4'd1: s_axil_rdata <= {29'd0, err_r, done_r, state != ST_IDLE};
                    4'd2: s_axil_rdata <= cfg_m;
                    4'd3: s_axil_rdata <= cfg_kt;
                    4'd4: s_axil_rdata <= cfg_nt;
                    4'd5: s_axil_rdata <= {30'd0, cfg_raw, cfg_relu};
                    4'd6: s_axil_rdata <= cyc;
                    4'd7: s_axil_rdata <= stl;
                    4'd8: s_axil_rdata <= {ACC[7:0], DB[7:0], C[7:0], R[7:0]};
                    4'd9: s_axil_rdata <= DEPTH;
                    default: s_axil_rdata <= 32'd0;
                endcase
            end else if (s_axil_rready) begin
                s_axil_rvalid <= 1'b0;
            end
        end
    end
    assign irq = done_r;

    // ---------------------------------------------------------------- schedule
    // The slot counter is only as wide as the longest slot needs; "first / last K tile", "last N
    // tile" and the counter windows (a_on: cnt < M, w_on: cnt < R, p_on: cnt < R + 3) are kept
    // as registered flags, so the global enable `adv`, which fans out to every register of the
    // datapath, is a few LUTs from registers and the stream valids.
    reg [CW-1:0] cnt, m_last, s_last, fin_last;   // M - 1, S - 1, M - 1 + DP
    reg          a_on, w_on, p_on;
    reg          w_need;                          // a weight or parameter beat is due now
    reg [31:0] kleft, nleft;                 // K / N tiles left after the current one
    reg [31:0] kt_r;
    reg        ti_first, ti_last, tj_last;
    reg [1:0]  tj2;                          // N tile index mod 4: parameter ring entry
    reg        relu_r, raw_r, pro, qpar;
    wire run = (state == ST_RUN);
    wire final_pass = ti_last && tj_last;
    wire in_slot = run && !pro;
    wire need_a = a_on;                      // only ever set while in a slot
    wire next_new_n = ti_last;               // the pass after this one starts a new N tile
    localparam integer R1 = R - 1, R2 = R + 2;
    localparam [CW-1:0] CNT_R1 = R1[CW-1:0], CNT_R2 = R2[CW-1:0];
    wire ld_w_pro = run && pro && w_on;
    wire ld_p_pro = run && pro && !w_on && p_on;
    wire ld_w_slot = in_slot && !final_pass && w_on;
    wire ld_p_slot = in_slot && !final_pass && next_new_n && !w_on && p_on;
    // = ld_w_pro || ld_p_pro || ld_w_slot || ld_p_slot, kept as a register (updated below with
    // the flags it depends on) so that `adv` is one or two LUTs from registers
    wire need_w = w_need;

    wire [3:0] fifo_count;
    wire push_req;
    wire adv = run && (!need_a || s_axis_a_tvalid) && (!need_w || s_axis_w_tvalid)
               && (!push_req || !fifo_count[2]);
    assign s_axis_a_tready = need_a && adv;
    assign s_axis_w_tready = need_w && adv;
    wire fifo_empty;
    wire flush_ok = (fifo_count == 4'd0) || ((fifo_count == 4'd1) && m_axis_o_tready);

    always @(posedge aclk) begin
        if (rst) begin
            state <= ST_IDLE;
            done_r <= 1'b0;
            err_r <= 1'b0;
            cyc <= 32'd0;
            stl <= 32'd0;
            pro <= 1'b0;
            cnt <= {CW{1'b0}};
            kleft <= 32'd0;
            nleft <= 32'd0;
            kt_r <= 32'd0;
            ti_first <= 1'b0;
            ti_last <= 1'b0;
            tj_last <= 1'b0;
            tj2 <= 2'd0;
            qpar <= 1'b0;
            m_last <= {CW{1'b0}};
            s_last <= {CW{1'b0}};
            fin_last <= {CW{1'b0}};
            a_on <= 1'b0;
            w_on <= 1'b0;
            p_on <= 1'b0;
            w_need <= 1'b0;
            relu_r <= 1'b0;
            raw_r <= 1'b0;
        end else if (start) begin
            done_r <= 1'b0;
            err_r <= !cfg_ok;
            if (cfg_ok) begin
                state <= ST_RUN;
                cyc <= 32'd0;
                stl <= 32'd0;
                pro <= 1'b1;
                cnt <= {CW{1'b0}};
                a_on <= 1'b0;
                w_on <= 1'b1;
                p_on <= 1'b1;
                w_need <= 1'b1;                  // the prologue loads in every cycle
                kt_r <= cfg_kt;
                kleft <= cfg_kt - 32'd1;
                nleft <= cfg_nt - 32'd1;
                ti_first <= 1'b1;
                ti_last <= (cfg_kt == 32'd1);
                tj_last <= (cfg_nt == 32'd1);
                tj2 <= 2'd0;
                qpar <= 1'b0;
                m_last <= cfg_m[CW-1:0] - 1'b1;
                s_last <= ((cfg_m > SMIN) ? cfg_m[CW-1:0] : SMIN[CW-1:0]) - 1'b1;
                fin_last <= cfg_m[CW-1:0] - 1'b1 + DP[CW-1:0];
                relu_r <= cfg_relu;
                raw_r <= cfg_raw;
            end
        end else if (run) begin
            if (!adv) begin
                stl <= stl + 32'd1;
            end else begin
                cyc <= cyc + 32'd1;
                if (pro) begin
                    if (cnt == CNT_R2) begin
                        pro <= 1'b0;
                        cnt <= {CW{1'b0}};
                        a_on <= 1'b1;
                        w_on <= 1'b1;
                        p_on <= 1'b1;
                        w_need <= !(ti_last && tj_last);
                    end else begin
                        cnt <= cnt + 1'b1;
                        w_on <= w_on && (cnt != CNT_R1);
                    end
                end else if (final_pass) begin
                    if (cnt == fin_last) state <= ST_FLUSH;
                    else cnt <= cnt + 1'b1;
                    a_on <= a_on && (cnt != m_last);
                end else if (cnt == s_last) begin
                    cnt <= {CW{1'b0}};
                    a_on <= 1'b1;
                    w_on <= 1'b1;
                    p_on <= 1'b1;
                    qpar <= !qpar;
                    if (next_new_n) begin
                        kleft <= kt_r - 32'd1;
                        ti_first <= 1'b1;
                        ti_last <= (kt_r == 32'd1);
                        nleft <= nleft - 32'd1;
                        tj_last <= (nleft == 32'd1);
                        tj2 <= tj2 + 2'd1;
                        w_need <= !((kt_r == 32'd1) && (nleft == 32'd1));
                    end else begin
                        kleft <= kleft - 32'd1;
                        ti_first <= 1'b0;
                        ti_last <= (kleft == 32'd1);
                        w_need <= !((kleft == 32'd1) && tj_last);
                    end
                end else begin
                    cnt <= cnt + 1'b1;
                    a_on <= a_on && (cnt != m_last);
                    w_on <= w_on && (cnt != CNT_R1);
                    p_on <= p_on && (cnt != CNT_R2);
                    w_need <= !final_pass && ((w_on && (cnt != CNT_R1))
                                              || (ti_last && p_on && (cnt != CNT_R2)));
                end
            end
        end else if (state == ST_FLUSH) begin
            if (flush_ok) cyc <= cyc + 32'd1;
            else stl <= stl + 32'd1;
            if (fifo_count == 4'd0) begin
                state <= ST_IDLE;
                done_r <= 1'b1;
            end
        end
    end

    // ---------------------------------------------------------------- weight and parameter writes
    // Row k of a weight tile is written to column c at (beat cycle + c + 1): the activations' skew
    // plus one register, so a bank is rewritten two cycles behind the last activation that reads
    // it and at least S - 1 >= 3 cycles before the next pass's first activation reads it. The
    // write enables and data are registers that only move on `adv`, so the PEs (and the
    // parameter ring) write without looking at `adv`: a write repeated during a stall stores
    // the same value again. That keeps the high-fanout enable out of these paths.
    wire          w_ld0 = ld_w_pro || ld_w_slot;
    wire [RW-1:0] w_row0 = cnt[RW-1:0];
    wire          w_bank0 = pro ? 1'b0 : !qpar;
    wire [1:0]    p_idx = cnt[1:0] - R[1:0];        // 0 bias, 1 mult, 2 shift
    wire [1:0]    p_entry = pro ? 2'd0 : (tj2 + 2'd1);
    reg           p_we_q;
    reg  [1:0]    p_idx_q, p_entry_q;
    reg  [C*32-1:0] p_data_q;
    always @(posedge aclk) begin
        if (rst) begin
            p_we_q <= 1'b0;
        end else if (adv) begin
            p_we_q <= ld_p_pro || ld_p_slot;
        end
        if (adv) begin
            p_idx_q <= p_idx;
            p_entry_q <= p_entry;
            p_data_q <= s_axis_w_tdata;
        end
    end

    // Unpacked net arrays (not wide packed buses): each element is its own net, so a simulator
    // only re-evaluates the PEs whose inputs changed (Icarus crawls on wide shared buses).
    wire            wc_we [0:C-1];
    wire [RW-1:0]   wc_row [0:C-1];
    wire            wc_bank [0:C-1];
    wire [DB-1:0]   wc_data [0:C-1];

    genvar r, c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_wcol
            reg            we_q;
            reg [RW-1:0]   row_q;
            reg            bank_q;
            reg [DB-1:0]   dl [0:c];
            integer        k;
            wire           we_in = (c == 0) ? w_ld0 : wc_we[(c == 0) ? 0 : c - 1];
            wire [RW-1:0]  row_in = (c == 0) ? w_row0 : wc_row[(c == 0) ? 0 : c - 1];
            wire           bank_in = (c == 0) ? w_bank0 : wc_bank[(c == 0) ? 0 : c - 1];
            always @(posedge aclk) begin
                if (rst) begin
                    we_q <= 1'b0;
                end else if (adv) begin
                    we_q <= we_in;
                end
                if (adv) begin
                    row_q <= row_in;
                    bank_q <= bank_in;
                    dl[0] <= s_axis_w_tdata[c*32 +: DB];
                    for (k = 1; k <= c; k = k + 1) dl[k] <= dl[k-1];
                end
            end
            assign wc_we[c] = we_q;
            assign wc_row[c] = row_q;
            assign wc_bank[c] = bank_q;
            assign wc_data[c] = dl[c];
        end
    endgenerate

    // ---------------------------------------------------------------- input skew and the array
    /* verilator lint_off UNUSEDSIGNAL */  // the last column's activation outputs
    wire [DB-1:0]  a_w [0:R*(C+1)-1];
    wire           s_w [0:R*(C+1)-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [ACC-1:0] p_w [0:(R+1)*C-1];

    generate
        for (c = 0; c < C; c = c + 1) begin : g_top
            assign p_w[c] = {ACC{1'b0}};
        end
        for (r = 0; r < R; r = r + 1) begin : g_skew
            reg [DB:0] sk [0:r];
            integer k;
            always @(posedge aclk) begin
                if (adv) begin
                    sk[0] <= need_a ? {qpar, s_axis_a_tdata[r*DB +: DB]} : {qpar, {DB{1'b0}}};
                    for (k = 1; k <= r; k = k + 1) sk[k] <= sk[k-1];
                end
            end
            assign a_w[r*(C+1)] = sk[r][DB-1:0];
            assign s_w[r*(C+1)] = sk[r][DB];
        end
        for (r = 0; r < R; r = r + 1) begin : g_row
            for (c = 0; c < C; c = c + 1) begin : g_col
                ws_pe #(.DB(DB), .ACC(ACC)) pe (
                    .clk(aclk),
                    .en(adv),
                    .a_in(a_w[r*(C+1)+c]),
                    .sel_in(s_w[r*(C+1)+c]),
                    .ps_in(p_w[r*C+c]),
                    .we(wc_we[c] && (wc_row[c] == r[RW-1:0])),
                    .wbank(wc_bank[c]),
                    .wdata(wc_data[c]),
                    .a_out(a_w[r*(C+1)+c+1]),
                    .sel_out(s_w[r*(C+1)+c+1]),
                    .ps_out(p_w[(r+1)*C+c])
                );
            end
        end
    endgenerate

    // ---------------------------------------------------------------- output de-skew
    wire [ACC-1:0] res [0:C-1];
    generate
        for (c = 0; c < C; c = c + 1) begin : g_deskew
            if (c == C - 1) begin : g_direct
                assign res[c] = p_w[R*C+c];
            end else begin : g_delay
                reg [ACC-1:0] dl [0:C-2-c];
                integer k;
                always @(posedge aclk) begin
                    if (adv) begin
                        dl[0] <= p_w[R*C+c];
                        for (k = 1; k <= C - 2 - c; k = k + 1) dl[k] <= dl[k-1];
                    end
                end
                assign res[c] = dl[C-2-c];
            end
        end
    endgenerate

    // ---------------------------------------------------------------- tags travelling with rows
    wire [TW-1:0] tag_in = {need_a && final_pass && (cnt == m_last), tj2, cnt[AW-1:0],
                            ti_last, ti_first, need_a};
    reg  [TW-1:0] tp [0:DA-1];
    reg  [TW-1:0] tq [1:NOUT];               // tags beside the output-stage registers
    integer ki;
    always @(posedge aclk) begin
        if (rst) begin
            for (ki = 0; ki < DA; ki = ki + 1) tp[ki] <= {TW{1'b0}};
            for (ki = 1; ki <= NOUT; ki = ki + 1) tq[ki] <= {TW{1'b0}};
        end else if (adv) begin
            tp[0] <= tag_in;
            for (ki = 1; ki < DA; ki = ki + 1) tp[ki] <= tp[ki-1];
            tq[1] <= tp[DA-1];
            for (ki = 2; ki <= NOUT; ki = ki + 1) tq[ki] <= tq[ki-1];
        end
    end
    /* verilator lint_off UNUSEDSIGNAL */  // only the row / flag / ring fields are read here
    wire [TW-1:0] t_rd_full = tp[DA-3];
    wire [TW-1:0] t_ac_full = tp[DA-1];
    wire [TW-1:0] t_wr_full = tq[1];
    wire [TW-1:0] t_out = tq[NOUT];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [AW-1:0] rd_row = t_rd_full[AW+2:3];
    wire          ac_first = t_ac_full[1];
    wire [AW-1:0] wr_row = t_wr_full[AW+2:3];
    wire          wr_en = t_wr_full[0] && !t_wr_full[2];   // a row of a K tile that is not last
    wire [1:0]    pi_ac = t_ac_full[AW+4:AW+3];

    // ---------------------------------------------------------------- accumulator (sums K tiles)
    // The row for K tile i+1 is read two cycles before its array result arrives (block RAM read
    // plus one register), and the sum is written back one cycle after it is formed; a slot of
    // S >= R + 3 >= 4 cycles keeps the write of pass i ahead of the read of pass i+1.
    reg [C*ACC-1:0] accmem [0:DEPTH-1];
    reg [C*ACC-1:0] acc_rd, acc_rd2, acc_q;
    wire [C*ACC-1:0] acc_sum;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_sum
            assign acc_sum[c*ACC +: ACC] = res[c]
                + (ac_first ? {ACC{1'b0}} : acc_rd2[c*ACC +: ACC]);
        end
    endgenerate
    always @(posedge aclk) begin
        if (wr_en) accmem[wr_row] <= acc_q;   // repeated during a stall: same row, same value
        if (adv) begin
            acc_rd <= accmem[rd_row];
            acc_rd2 <= acc_rd;
            acc_q <= acc_sum;
        end
    end

    // ---------------------------------------------------------------- output stage per column
    // One operation per register, tags travelling alongside (tq[k] beside stage k):
    //  1 acc_q = acc + array result; this row's bias / mult / shift picked from the ring
    //  2 + bias (wraps)          3 two 17x17 products (DSP blocks)   4 product = hi * 2^16 + lo
    //  5 shift right by 8 * floor((s-1) / 8)   6 shift by (s-1) mod 8
    //  7 rounding: ((y >> (s-1)) + 1) >> 1 == (y + 2^(s-1)) >> s   8 ReLU, saturation / raw
    wire [C*32-1:0] o_last;
    localparam signed [DB-1:0] QMAX = {1'b0, {(DB - 1){1'b1}}};
    localparam signed [DB-1:0] QMIN = {1'b1, {(DB - 1){1'b0}}};
    generate
        for (c = 0; c < C; c = c + 1) begin : g_out
            reg [31:0] bias_q [0:3];
            reg [15:0] mult_q [0:3];
            reg [5:0]  shift_q [0:3];
            reg [31:0] bias1, o2, r3, r4, r5, r6, r7, o8;
            reg [15:0] mult1;
            reg [5:0]  sh1, sh2, sh3;
            reg [5:0]  sm4;                        // s - 1 (0 when s = 0)
            reg [2:0]  sm5;
            reg        nz4, nz5, nz6;              // s != 0: round
            wire [31:0] p_lo;
            wire signed [32:0] p_hi;
            reg signed [48:0] p4, c5, f6, y7;
            // the multipliers register their inputs in step with o2 and their products at stage 3
            wire [31:0] o2_n = acc_q[c*ACC +: 32] + bias1;
            wire signed [16:0] lo_s = {1'b0, o2_n[15:0]};
            wire signed [16:0] hi_s = {o2_n[31], o2_n[31:16]};
            wire signed [16:0] m_s = {1'b0, mult1};
            /* verilator lint_off UNUSEDSIGNAL */  // products' sign bits, known to be redundant
            wire signed [33:0] lo_prod;
            wire signed [33:0] hi_prod;
            /* verilator lint_on UNUSEDSIGNAL */
            ws_mul #(.AW(17), .BW(17)) mul_lo (.clk(aclk), .en(adv), .a(lo_s), .b(m_s), .p(lo_prod));
            ws_mul #(.AW(17), .BW(17)) mul_hi (.clk(aclk), .en(adv), .a(hi_s), .b(m_s), .p(hi_prod));
            assign p_lo = lo_prod[31:0];
            assign p_hi = hi_prod[32:0];
            wire [32:0] hi_sum = p_hi + {17'd0, p_lo[31:16]};
            wire neg = y7[48];
            wire fits = (y7[48:DB-1] == {(50 - DB){1'b0}}) || (y7[48:DB-1] == {(50 - DB){1'b1}});
            wire [DB-1:0] q = (relu_r && neg) ? {DB{1'b0}}
                              : (fits ? y7[DB-1:0] : (neg ? QMIN : QMAX));
            always @(posedge aclk) begin
                if (p_we_q) begin
                    case (p_idx_q)
                        2'd0: bias_q[p_entry_q] <= p_data_q[c*32 +: 32];
                        2'd1: mult_q[p_entry_q] <= p_data_q[c*32 +: 16];
                        default: shift_q[p_entry_q] <= p_data_q[c*32 +: 6];
                    endcase
                end
                if (adv) begin
                    bias1 <= bias_q[pi_ac];
                    mult1 <= mult_q[pi_ac];
                    sh1 <= shift_q[pi_ac];
                    o2 <= o2_n;
                    sh2 <= sh1;
                    r3 <= o2;
                    sh3 <= sh2;
                    p4 <= {hi_sum, p_lo[15:0]};
                    r4 <= r3;
                    sm4 <= (sh3 == 6'd0) ? 6'd0 : sh3 - 6'd1;
                    nz4 <= (sh3 != 6'd0);
                    c5 <= p4 >>> {sm4[5:3], 3'b000};
                    sm5 <= sm4[2:0];
                    nz5 <= nz4;
                    r5 <= r4;
                    f6 <= c5 >>> sm5;
                    nz6 <= nz5;
                    r6 <= r5;
                    y7 <= nz6 ? ((f6 + 49'sd1) >>> 1) : f6;
                    r7 <= r6;
                    o8 <= raw_r ? r7 : {{(32 - DB){q[DB-1]}}, q};
                end
            end
            assign o_last[c*32 +: 32] = o8;
        end
    endgenerate

    // ---------------------------------------------------------------- output FIFO
    assign push_req = t_out[0] && t_out[2];
    ws_fifo #(.W(C * 32 + 1), .DEPTH_LOG2(2)) ofifo (
        .clk(aclk),
        .rst(rst),
        .push(push_req && adv),
        .din({t_out[TW-1], o_last}),
        .pop(m_axis_o_tready),
        .dout({m_axis_o_tlast, m_axis_o_tdata}),
        .empty(fifo_empty),
        .count(fifo_count[2:0])
    );
    assign fifo_count[3] = 1'b0;
    assign m_axis_o_tvalid = !fifo_empty;
endmodule

`default_nettype wire
