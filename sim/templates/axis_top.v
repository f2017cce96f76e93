`timescale 1 ns / 1 ps
// fraudfpga AXI4-Stream top level of {what}.
//
// Transactions enter on the s_axis slave, scores leave on the m_axis master, in order, each
// with the s_axis_tuser (transaction identifier) and s_axis_tlast it came with.
//
// The pipeline inside {valid_top} cannot stall (II = 1, no clock enable), so the wrapper
// uses credit-based admission: a transaction is accepted only while fewer than DEPTH are
// admitted and not yet delivered (in the pipeline or waiting in the output FIFO), and the
// output FIFO has DEPTH entries, so a result can always be stored whatever m_axis_tready does.
// s_axis_tready and m_axis_tvalid are registers: no combinational path from one side to the
// other. One transaction per clock needs DEPTH >= LATENCY + 2 (the pipeline's LATENCY
// transactions, the one in the FIFO's output register, one more admitted in the same cycle).
// The wrapper adds one cycle of latency (the FIFO's write). The FIFOs have no reset and map to
// distributed (LUT) RAM.
//
// Reset (aresetn low, synchronous): every transaction in flight or in the FIFO is dropped;
// m_axis_tvalid and s_axis_tready are low during reset; s_axis_tready rises one cycle after it.
module {top} #(
    parameter integer DEPTH = {depth}
) (
    input  wire                 aclk,
    input  wire                 aresetn,
    // transactions: {n_in} x {input_type}, input 0 in bits [{in_width_m1}:0]
    input  wire                 s_axis_tvalid,
    output reg                  s_axis_tready,
    input  wire [{s_msb}:0]     s_axis_tdata,
    input  wire [{id_msb}:0]    s_axis_tuser,     // transaction identifier, returned with its score
    input  wire                 s_axis_tlast,
    // scores: {output_type}, {extension}-extended to {m_width} bits
    output reg                  m_axis_tvalid,
    input  wire                 m_axis_tready,
    output wire [{m_msb}:0]     m_axis_tdata,
    output wire [{id_msb}:0]    m_axis_tuser,
    output wire                 m_axis_tlast
);
    localparam integer LATENCY = {latency};
    localparam integer PTR_BITS = $clog2(DEPTH);
    localparam integer OUT_BITS = {out_bits};
    localparam integer SIDE_BITS = {id_bits} + 1;

    wire rst = !aresetn;
    wire accept = s_axis_tvalid && s_axis_tready;
    wire deliver = m_axis_tvalid && m_axis_tready;

    // Credits: transactions admitted and not yet delivered.
    reg  [PTR_BITS:0] in_use;
    wire [PTR_BITS:0] in_use_next = in_use + {{{{PTR_BITS{{1'b0}}}}, accept}} - {{{{PTR_BITS{{1'b0}}}}, deliver}};
    // Results waiting in the FIFO.
    reg  [PTR_BITS:0] stored;
    wire              core_valid;
    wire [PTR_BITS:0] stored_next = stored + {{{{PTR_BITS{{1'b0}}}}, core_valid}} - {{{{PTR_BITS{{1'b0}}}}, deliver}};
    always @(posedge aclk) begin
        if (rst) begin
            in_use <= 0;
            stored <= 0;
            s_axis_tready <= 1'b0;
            m_axis_tvalid <= 1'b0;
        end else begin
            in_use <= in_use_next;
            stored <= stored_next;
            s_axis_tready <= in_use_next < DEPTH;
            m_axis_tvalid <= stored_next != 0;
        end
    end

    function [PTR_BITS-1:0] advance(input [PTR_BITS-1:0] pointer);
        advance = (pointer == DEPTH - 1) ? {{PTR_BITS{{1'b0}}}} : pointer + 1'b1;
    endfunction

    // The identifier and tlast wait beside the pipeline, in order, written on admission.
    reg [SIDE_BITS-1:0] side_fifo [0:DEPTH-1];
    reg [PTR_BITS-1:0]  side_write;
    // The results, written when the pipeline presents them.
    reg [OUT_BITS-1:0]  result_fifo [0:DEPTH-1];
    reg [PTR_BITS-1:0]  result_write;
    reg [PTR_BITS-1:0]  read;
    wire [OUT_BITS-1:0] core_data;
    always @(posedge aclk) begin
        if (accept) side_fifo[side_write] <= {{s_axis_tlast, s_axis_tuser}};
        if (core_valid) result_fifo[result_write] <= core_data;
        if (rst) begin
            side_write <= 0;
            result_write <= 0;
            read <= 0;
        end else begin
            if (accept) side_write <= advance(side_write);
            if (core_valid) result_write <= advance(result_write);
            if (deliver) read <= advance(read);
        end
    end
    wire [OUT_BITS-1:0] result = result_fifo[read];
    assign m_axis_tdata = {m_assign};
    assign {{m_axis_tlast, m_axis_tuser}} = side_fifo[read];

    {valid_top} core (.clk(aclk), .rst(rst), .in_valid(accept), .in_data(s_axis_tdata[{in_msb}:0]),
        .out_valid(core_valid), .out_data(core_data));
endmodule
